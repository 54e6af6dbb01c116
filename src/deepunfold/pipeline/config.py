"""Validation of the pipeline configuration against its JSON schema.

Reports *every* problem at once, each naming the dotted key it concerns, e.g.
``config key 'robust.grid_points': -3 is less than the minimum of 3``, and fills in the
schema's defaults for keys the user left out.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

__all__ = ["ConfigError", "load_schema", "fill_defaults", "validate_config"]


class ConfigError(ValueError):
    """The configuration does not match the schema."""


def load_schema(path: str | Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def fill_defaults(config: dict, schema: dict) -> dict:
    """Insert schema defaults for missing keys, recursively, in place; returns ``config``."""
    props = schema.get("properties", {})
    for key, sub in props.items():
        if key not in config and "default" in sub:
            config[key] = copy.deepcopy(sub["default"])
        if isinstance(config.get(key), dict) and sub.get("type") == "object":
            fill_defaults(config[key], sub)
    return config


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _describe(error) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        keys = ", ".join(f"'{_key([*error.absolute_path, name])}'" for name in extra)
        return f"config key {keys}: unknown key (allowed here: {', '.join(allowed)})"
    return f"config key '{_key(error.absolute_path)}': {error.message}"


def validate_config(config: dict, schema_path: str | Path) -> dict:
    """Fill defaults into ``config`` and validate it; raise :class:`ConfigError` if invalid."""
    from jsonschema import Draft7Validator

    schema = load_schema(schema_path)
    fill_defaults(config, schema)
    errors = sorted(Draft7Validator(schema).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        lines = "\n  ".join(_describe(e) for e in errors)
        raise ConfigError(f"invalid configuration ({len(errors)} problem(s)):\n  {lines}")
    return config
