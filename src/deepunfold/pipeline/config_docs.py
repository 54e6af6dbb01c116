"""config/README.md, generated from the config schema (the one place of every default).

    python -m deepunfold.pipeline.config_docs > config/README.md

writes a short introduction and then one table per config section: every key with its
default, the offline demo's value where it differs, the values the schema allows, and the
schema's description. ``tests/test_config_docs.py`` fails when the committed file differs from
what this prints, so the reference cannot drift from the schema.
"""

from __future__ import annotations

import sys
from pathlib import Path

from deepunfold.pipeline.config import SCHEMA, load_schema, resolve_config

__all__ = ["config_reference", "main"]

CONFIG_DIR = SCHEMA.parents[2] / "config"

INTRO = """\
# Configuration

The full study runs on the defaults: `config/config.yaml`, read first (the Snakefile's
`configfile:`), states no value of its own; put a study's changes there or in a file given with
`--configfile`. `config/demo.yaml`, merged over it by the `demo` workflow profile, lists only what
the offline demo changes, and `config/lista_fast.yaml` swaps in a cheaper task 3 schedule. Each
file is merged over the ones before it key by key; a list is replaced whole.

Every key, with its type, range, default and meaning, is written once, in
`workflow/schemas/config.schema.yaml`. Before any job runs, the configuration is checked against
it (`deepunfold.pipeline.config.validate_config`, called from `workflow/rules/common.smk`): an
unknown key, a wrong type or an out-of-range value stops the run with a message naming the key,
e.g. `config key 'robust.grid_points': -3 is less than the minimum of 3`. The rules between keys
that a schema cannot state (the example level among the swept levels, `n_val < n_train`, ...)
are checked next, in `check_cross_keys` of the same module, their only copy. Keys left out take
their defaults.

Everything below is generated from the schema; do not edit it here. Edit the schema, then run
`python -m deepunfold.pipeline.config_docs > config/README.md` (`tests/test_config_docs.py` fails
while the two disagree). The demo column shows the offline demo's value where it differs from
the default.
"""

HEADER = "| key | default | demo | allowed | meaning |\n| --- | --- | --- | --- | --- |"


def _value(value) -> str:
    """A config value as YAML flow text, e.g. ``[1, 2]``, ``null``, ``"a photo of a {}"``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _bounds(node: dict) -> str:
    parts = []
    for key, sign in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
        ("multipleOf", "multiple of"),
    ):
        if key in node:
            parts.append(f"{sign} {node[key]}")
    return ", ".join(parts)


def _allowed(node: dict) -> str:
    """The values the schema allows for ``node``, in words."""
    if "enum" in node:
        return "one of " + ", ".join(_code(_value(v)) for v in node["enum"])
    if "const" in node:
        return _code(_value(node["const"]))
    if "oneOf" in node:
        return " or ".join(_allowed(sub) for sub in node["oneOf"])
    types = node.get("type")
    if isinstance(types, list):
        kinds = " or ".join(t for t in types if t != "null")
        base = _allowed({**node, "type": kinds}) if kinds else ""
        return f"{base} or null" if "null" in types else base
    if types == "array":
        item = _allowed(node.get("items", {})) or "value"
        size = []
        if node.get("minItems") == node.get("maxItems") and "minItems" in node:
            size.append(f"{node['minItems']} values")
        else:
            if "minItems" in node:
                size.append(f"at least {node['minItems']}")
            if "maxItems" in node:
                size.append(f"at most {node['maxItems']}")
        if node.get("uniqueItems"):
            size.append("distinct")
        return f"list of {item}" + (f" ({', '.join(size)})" if size else "")
    if types == "string":
        extra = []
        if node.get("minLength"):
            extra.append("non-empty")
        if "pattern" in node:
            extra.append(f"matching `{node['pattern']}`")
        return "string" + (f" ({', '.join(extra)})" if extra else "")
    bounds = _bounds(node)
    return f"{types} {bounds}" if bounds and types else (types or "")


def _per_setting(values: dict, key: str) -> str:
    """``seed: 100, snr40: 250`` for a key of named settings (one value if all agree)."""
    got = {name: s.get(key) for name, s in values.items()}
    if len({_value(v) for v in got.values()}) == 1:
        return _code(_value(next(iter(got.values()))))
    return ", ".join(f"{name}: {_code(_value(v))}" for name, v in got.items())


def _rows(node: dict, path: list[str], default, demo) -> list[str]:
    """Table rows of ``node`` (schema) at ``path`` with its resolved default and demo values."""
    key = ".".join(path)
    desc = _cell(node.get("description", ""))
    if "properties" in node:
        rows = [f"| **`{key}`** | | | | {desc} |"] if len(path) > 1 and desc else []
        for name, sub in node["properties"].items():
            rows += _rows(sub, [*path, name], default[name], demo[name])
        return rows
    named = node.get("additionalProperties")
    if node.get("type") == "object" and isinstance(named, dict) and "properties" in named:
        names, demo_names = ", ".join(map(_code, default)), ", ".join(map(_code, demo))
        rows = [
            f"| `{key}` | {names} | {demo_names if demo_names != names else ''} | "
            f"names matching `{node['propertyNames']['pattern']}` | {desc} |"
        ]
        for name, sub in named["properties"].items():
            d, x = _per_setting(default, name), _per_setting(demo, name)
            rows.append(
                f"| `{key}.<name>.{name}` | {_cell(d)} | {_cell(x) if x != d else ''} | "
                f"{_cell(_allowed(sub))} | {_cell(sub.get('description', ''))} |"
            )
        return rows
    d, x = _cell(_code(_value(default))), _cell(_code(_value(demo)))
    return [f"| `{key}` | {d} | {x if x != d else ''} | {_cell(_allowed(node))} | {desc} |"]


def config_reference(schema_path: str | Path = SCHEMA, config_dir: str | Path = CONFIG_DIR) -> str:
    """The text of config/README.md for this schema and the demo config in ``config_dir``."""
    config_dir = Path(config_dir)
    schema = load_schema(schema_path)
    default = resolve_config(config_dir / "config.yaml", schema_path=schema_path)
    demo = resolve_config(
        config_dir / "config.yaml", config_dir / "demo.yaml", schema_path=schema_path
    )
    props = schema["properties"]
    out = [INTRO, "## Global\n", HEADER]
    for name, sub in props.items():
        if "properties" not in sub:
            out += _rows(sub, [name], default[name], demo[name])
    for name, sub in props.items():
        if "properties" in sub:
            out += ["", f"## `{name}`\n"]
            if sub.get("description"):
                out += [" ".join(sub["description"].split()) + "\n"]
            out += [HEADER, *_rows(sub, [name], default[name], demo[name])]
    return "\n".join(out) + "\n"


def main() -> None:
    sys.stdout.write(config_reference())


if __name__ == "__main__":
    main()
