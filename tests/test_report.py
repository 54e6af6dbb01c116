"""The captions of `snakemake --report` render without a reStructuredText error or warning.

Snakemake renders a caption in two steps: Jinja2 (``snakemake.config``, ``snakemake.wildcards``)
and then docutils, which does not stop on a problem but prints it, in red, into the report
(``|x_i - z|``, for example, is an undefined substitution there). Each caption is rendered here
the same way, for the full study's and the demo's configuration and every value of the
wildcards it uses, with docutils told to raise on any warning. The end-to-end test builds the
real report of the suite's demo run and looks for docutils' messages in it.
"""

import html
import itertools
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from docutils.core import publish_doctree
from docutils.utils import SystemMessage
from helpers import snakemake
from jinja2 import Environment, StrictUndefined

from deepunfold.pipeline.config import resolve_config

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "workflow" / "report"
CAPTIONS = sorted(REPORT.glob("*.rst"))
# Snakemake appends these link targets to every caption (snakemake/report/__init__.py), so a
# caption may refer to `Workflow`_ or `Statistics`_.
SNAKEMAKE_LINKS = (
    "\n\n.. _Workflow: javascript:show_panel('workflow')"
    "\n.. _Statistics: javascript:show_panel('statistics')\n"
)
# Warnings (level 2) and errors halt; nothing is printed to stderr.
DOCUTILS_SETTINGS = {"halt_level": 2, "report_level": 5}


# The config as Snakemake sees it: config/config.yaml, the demo merged over it, defaults filled.
CONFIGS = {
    "full": resolve_config(ROOT / "config" / "config.yaml"),
    "demo": resolve_config(ROOT / "config" / "config.yaml", ROOT / "config" / "demo.yaml"),
}


def wildcard_values(config: dict) -> dict[str, list]:
    """Every value each wildcard of a figure with a caption takes."""
    return {
        "setting": list(config["lista"]["settings"]),
        "mode": ["frame", "video"],
        "prox": ["l1", "l12"],
        "index": list(config["clip"]["panels"]["images"]),
    }


def render(path: Path, config: dict, wildcards: dict) -> str:
    # Snakemake's Jinja2 environment (trim_blocks, lstrip_blocks); StrictUndefined so that a
    # caption naming a config key that no longer exists fails instead of printing nothing.
    env = Environment(trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)
    snakemake = SimpleNamespace(config=config, wildcards=SimpleNamespace(**wildcards))
    return env.from_string(path.read_text() + SNAKEMAKE_LINKS).render(snakemake=snakemake)


def test_every_caption_of_the_rules_exists():
    referenced = set()
    for rules in (ROOT / "workflow" / "rules").glob("*.smk"):
        referenced |= set(re.findall(r'caption="\.\./report/([\w.]+\.rst)"', rules.read_text()))
    assert len(referenced) >= 20  # the parse found the captions
    assert referenced <= {p.name for p in CAPTIONS}
    # workflow.rst is the report's front page (Snakefile `report:`)
    assert {p.name for p in CAPTIONS} - referenced == {"workflow.rst"}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("path", CAPTIONS, ids=lambda p: p.name)
def test_caption_renders_without_docutils_problems(path, name):
    config = CONFIGS[name]
    used = sorted(set(re.findall(r"snakemake\.wildcards\.(\w+)", path.read_text())))
    values = wildcard_values(config)
    assert set(used) <= set(values), f"{path.name}: add values for {used} to wildcard_values"
    for combination in itertools.product(*(values[w] for w in used)):
        wildcards = dict(zip(used, combination, strict=True))
        text = render(path, config, wildcards)
        try:
            publish_doctree(text, settings_overrides=DOCUTILS_SETTINGS)
        except SystemMessage as error:
            pytest.fail(f"{path.name} ({name} config, wildcards {wildcards}): {error}")


def test_the_check_catches_an_undefined_substitution():
    # The task-1 loss caption before its fix: reStructuredText reads |x_i - z| as a
    # substitution reference, which is an error.
    with pytest.raises(SystemMessage, match="Undefined substitution"):
        publish_doctree("the loss sum |x_i - z| over z", settings_overrides=DOCUTILS_SETTINGS)


def docutils_messages(report_html: str) -> list[str]:
    """The text of every docutils system message that a report's captions carry."""
    # captions sit JSON-escaped in the page: <p class=\"system-message-title\">System Message:
    # ERROR/3 (...)</p>\nUndefined substitution referenced: ...</div>
    text = report_html.replace('\\"', '"').replace("\\n", "\n")
    found = re.findall(r"System Message: (\w+/\d).*?</p>\s*(.*?)</div>", text, flags=re.S)
    return [f"{level}: {html.unescape(message).strip()}" for level, message in found]


@pytest.mark.pipeline
def test_demo_report_has_no_docutils_messages(demo_run, tmp_path):
    workdir, _ = demo_run
    report = tmp_path / "report.html"
    snakemake(workdir, "--workflow-profile", "workflow/profiles/demo", "--report", str(report))
    text = report.read_text(errors="replace")
    assert "Task 1. The three losses" in text  # the captions are in it
    assert docutils_messages(text) == []
