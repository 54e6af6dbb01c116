"""Code provenance: every rule depends on exactly the library files its script imports.

The unit tests check the static import analysis (`deepunfold.pipeline.provenance`) against
Python's own import machinery; the pipeline tests check that the demo DAG's jobs carry those
files as inputs, and that editing one module reruns exactly the rules that import it.
"""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deepunfold.pipeline import provenance
from deepunfold.pipeline.provenance import direct_imports, script_sources, transitive_imports

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "src" / "deepunfold"
SCRIPTS = ROOT / "workflow" / "scripts"


def rule_scripts(rules_dir: Path = ROOT / "workflow" / "rules") -> dict[str, str]:
    """{rule: script file name} read from the rule files' text (independent of the DAG)."""
    found = {}
    for smk in sorted(rules_dir.glob("*.smk")):
        for block in re.split(r"(?m)^(?=rule )", smk.read_text()):
            name = re.match(r"rule (\w+):", block)
            script = re.search(r'script:\s*\n\s*"\.\./scripts/(\w+\.py)"', block)
            if name and script:
                found[name.group(1)] = script.group(1)
    return found


# --- the static analysis ---------------------------------------------------------------


def test_lazy_imports_inside_functions_are_found(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(
        textwrap.dedent(
            """
            import numpy as np
            from deepunfold.pipeline.jobs import setup_job

            def later():
                from deepunfold.data import moving_digits
                import deepunfold.ops.prox

            class C:
                def m(self):
                    from deepunfold import fista  # a lazy top-level name
            """
        )
    )
    mods = transitive_imports(script)
    for expected in [
        "deepunfold",
        "deepunfold.pipeline",
        "deepunfold.pipeline.jobs",
        "deepunfold.data.moving_digits",
        "deepunfold.ops.prox",
        "deepunfold.solvers.proximal_gradient",  # through __init__'s _LAZY table
    ]:
        assert expected in mods
    assert not any(m.startswith("numpy") for m in mods)
    # moving_digits writes files through deepunfold.io: reached transitively
    assert "deepunfold.io" in mods


def test_relative_imports_resolve(tmp_path):
    pkg = tmp_path / "deepunfold"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from .b import x\nfrom .. import top\n")
    (pkg / "sub" / "b.py").write_text("x = 1\n")
    (pkg / "top.py").write_text("")
    assert direct_imports(pkg / "sub" / "a.py", root=pkg) == {
        "deepunfold.sub.b",
        "deepunfold",
        "deepunfold.top",
    }


def test_unknown_module_is_a_clear_error(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("from deepunfold.no_such_module import thing\n")
    with pytest.raises(ValueError, match="deepunfold.no_such_module"):
        transitive_imports(script)


def test_exclusions_are_documented():
    for module, reason in provenance.EXCLUDED.items():
        assert provenance.module_file(module) is not None, module
        assert len(reason) > 20, module


RECORD = """
import builtins, importlib, json, pkgutil, sys
import deepunfold
edges = set()
real = builtins.__import__
def spy(name, globals=None, locals=None, fromlist=(), level=0):
    mod = real(name, globals, locals, fromlist, level)
    importer = (globals or {}).get("__name__", "")
    if importer.startswith("deepunfold"):
        if level:
            pkg = (globals or {}).get("__package__") or importer
            base = pkg.rsplit(".", level - 1)[0] if level > 1 else pkg
            name = f"{base}.{name}" if name else base
        if name.split(".")[0] == "deepunfold":
            edges.add((importer, name))
            for f in fromlist or ():
                if f"{name}.{f}" in sys.modules:
                    edges.add((importer, f"{name}.{f}"))
    return mod
builtins.__import__ = spy
names = [m.name for m in pkgutil.walk_packages(deepunfold.__path__, "deepunfold.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "edges": sorted(edges)}))
"""


def test_static_analysis_sees_every_import_python_executes():
    """Import every library module under an import spy: each edge Python takes is seen."""
    out = subprocess.run(
        [sys.executable, "-c", RECORD], capture_output=True, text=True, check=True
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    assert len(data["modules"]) > 30
    assert len(data["edges"]) > 20  # the spy saw the library's imports
    missed = []
    for importer, imported in data["edges"]:
        path = provenance.module_file(importer)
        static = provenance._closure(importer, provenance.LIBRARY_ROOT)
        if path is not None and imported not in static:
            missed.append((importer, imported))
    assert not missed


def test_every_script_resolves():
    scripts = sorted(SCRIPTS.glob("*.py"))
    assert len(scripts) > 25
    for script in scripts:
        files = script_sources(script)
        assert all(Path(f).is_file() for f in files), script
        if "from deepunfold" in script.read_text():
            assert any(f.endswith("deepunfold/__init__.py") for f in files), script


# --- the DAG ----------------------------------------------------------------------------


def _job_inputs(dry_run_output: str) -> dict[str, set[str]]:
    """{rule: union of its jobs' inputs} from a verbose dry run."""
    inputs: dict[str, set[str]] = {}
    rule = None
    for line in dry_run_output.splitlines():
        head = re.match(r"(?:local)?rule (\w+):$", line.strip())
        if head:
            rule = head.group(1)
            inputs.setdefault(rule, set())
        elif rule and line.strip().startswith("input:"):
            inputs[rule].update(p.strip() for p in line.split(":", 1)[1].split(","))
        elif not line.startswith(" "):
            rule = None
    return inputs


def _importers(module_file: str) -> list[str]:
    """The rules whose script reaches ``module_file`` (a path relative to the repository)."""
    return sorted(
        rule
        for rule, script in rule_scripts().items()
        # downloads fetch external data that no library edit changes: they carry no code
        if not rule.startswith("download_")
        and module_file in script_sources(SCRIPTS / script, relative_to=ROOT)
    )


@pytest.mark.pipeline
def test_every_job_carries_the_modules_its_script_imports(tmp_path):
    from helpers import DEMO, copy_workflow, snakemake

    wd = copy_workflow(tmp_path / "wf")
    proc = snakemake(wd, "results/figures/all", *DEMO, "--dry-run", "--verbose")
    inputs = _job_inputs(proc.stdout)
    scripted = rule_scripts()
    downloads = {r for r in scripted if r.startswith("download_")}
    checked = 0
    for rule, got in inputs.items():
        if rule not in scripted or rule in downloads:
            continue
        script = SCRIPTS / scripted[rule]
        want = set(script_sources(script, relative_to=ROOT)) | {
            f"workflow/scripts/{scripted[rule]}"
        }
        assert want <= got, f"{rule} lacks {sorted(want - got)}"
        checked += 1
    # the demo runs every scripted rule except the downloads (its data ships offline)
    assert checked == len(scripted) - len(downloads)


@pytest.fixture
def done(demo_run, tmp_path):
    from helpers import clone_run

    return clone_run(demo_run[0], tmp_path / "run")


@pytest.mark.pipeline
def test_editing_a_model_module_reruns_exactly_its_importers_and_their_dependents(done):
    from helpers import DEMO, dry_run_jobs, job_counts, snakemake

    rel = "src/deepunfold/ops/prox.py"
    rules = _importers(rel)
    # prox is shared by the solvers and the learned models of tasks 3, 4 and 6, not task 1
    assert {"lista_train", "rpca_train", "multilayer_train", "clip_sparse_code"} <= set(rules)
    assert "robust_estimates" not in rules
    forced = snakemake(done, "results/figures/all", *DEMO, "--dry-run", "--forcerun", *rules).stdout
    expected = job_counts(forced)
    expected.pop("total", None)

    module = done / rel
    module.write_text(module.read_text() + "\n# an edit\n")
    assert dry_run_jobs(done) == expected
    assert "robust_estimates" not in expected


@pytest.mark.pipeline
def test_editing_io_reruns_every_rule_that_writes_a_table(done):
    """io.py writes the tables, and no hand list used to name it: now every user reruns."""
    from helpers import dry_run_jobs

    rel = "src/deepunfold/io.py"
    users = set(_importers(rel))
    module = done / rel
    module.write_text(module.read_text() + "\n# an edit\n")
    jobs = dry_run_jobs(done)
    assert users <= set(jobs)
    assert {"robust_estimates", "rpca_data", "lista_data", "figures_manifest"} <= set(jobs)
