"""config/README.md is the reference generated from the schema, key for key."""

import difflib
import re

from helpers import ROOT, SCHEMA

from deepunfold.pipeline.config import load_schema
from deepunfold.pipeline.config_docs import config_reference

README = ROOT / "config" / "README.md"
REGENERATE = "python -m deepunfold.pipeline.config_docs > config/README.md"


def schema_keys(node=None, path=()):
    """Dotted names of every key of the schema (named settings as <name>)."""
    node = load_schema(SCHEMA) if node is None else node
    for name, sub in node.get("properties", {}).items():
        key = (*path, name)
        if "properties" in sub:
            yield from schema_keys(sub, key)
            continue
        yield ".".join(key)
        named = sub.get("additionalProperties")
        if isinstance(named, dict) and "properties" in named:
            yield from schema_keys(named, (*key, "<name>"))


def test_committed_reference_is_the_generated_one():
    committed, generated = README.read_text(), config_reference(SCHEMA, ROOT / "config")
    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(True), generated.splitlines(True), "committed", "generated", n=0
        )
    )
    assert committed == generated, f"config/README.md is stale; run {REGENERATE}\n{diff[:3000]}"


def test_one_row_per_schema_key():
    rows = re.findall(r"^\| `([^`]+)` \|", README.read_text(), re.M)
    assert sorted(rows) == sorted(schema_keys())
    assert len(rows) == len(set(rows))


def test_every_key_is_described():
    missing = [k for k, row in _rows().items() if not row[-1].strip()]
    assert missing == []


def test_demo_column_holds_the_demo_values():
    rows = _rows()
    assert rows["run_label"][:2] == ['`"full study"`', '`"offline demo"`']
    assert rows["robust.breakdown.n_trials"][:2] == ["`500`", "`100`"]
    assert rows["seed"][1] == ""  # the demo keeps the default
    assert rows["multilayer.network.epochs"][:2] == ["`20`", "`3`"]
    assert rows["multilayer.network.channels"][1] == ""  # the demo trains the full network


def _rows() -> dict[str, list[str]]:
    """{key: [default, demo, allowed, meaning]} of the committed reference."""
    out = {}
    for line in README.read_text().splitlines():
        m = re.match(r"^\| `([^`]+)` \| (.*) \|$", line)
        if m:
            out[m.group(1)] = [c.strip() for c in re.split(r"(?<!\\)\|", m.group(2))]
    return out
