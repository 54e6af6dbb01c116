"""The pipeline configuration: one schema, defaults written once, every check in one place.

``workflow/schemas/config.schema.yaml`` is the single source of the configuration: each key's
type, range, **default** and description. ``config/config.yaml`` states nothing the schema
already says (the full study is the schema's defaults), ``config/README.md`` is generated from
the schema (:mod:`deepunfold.pipeline.config_docs`), and :func:`validate_config` fills the
defaults in. It reports *every* problem at once, each naming the dotted key it concerns, e.g.
``config key 'robust.grid_points': -3 is less than the minimum of 3``. Checks the schema
cannot express (one key against another) live in :func:`check_cross_keys` only.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

__all__ = [
    "SCHEMA",
    "ConfigError",
    "load_schema",
    "merge_config",
    "fill_defaults",
    "check_cross_keys",
    "validate_config",
    "resolve_config",
]

#: The schema of a checkout (the workflow's own copy is what common.smk validates against).
SCHEMA = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The configuration does not match the schema."""


def load_schema(path: str | Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def merge_config(base: dict, new: dict) -> dict:
    """Merge ``new`` over ``base`` in place, as Snakemake merges a --configfile over the
    Snakefile's: mappings key by key, recursively; any other value (lists too) replaces."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_config(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _add_missing(config: dict, default: dict) -> None:
    for key, value in default.items():
        if key not in config:
            config[key] = copy.deepcopy(value)
        elif isinstance(config[key], dict) and isinstance(value, dict):
            _add_missing(config[key], value)


def fill_defaults(config: dict, schema: dict) -> dict:
    """Insert schema defaults for missing keys, recursively, in place; returns ``config``.

    A mapping the user gives where the default is a non-empty mapping (the named problem
    settings of ``lista.settings``) is completed from it key by key, so a file that changes
    one value of a default setting means what it would mean merged over a config file that
    spelled the defaults out."""
    props = schema.get("properties", {})
    for key, sub in props.items():
        if "default" in sub:
            if key not in config:
                config[key] = copy.deepcopy(sub["default"])
            elif isinstance(config[key], dict) and isinstance(sub["default"], dict):
                _add_missing(config[key], sub["default"])
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


def _cross_key_problems(cfg: dict) -> list[str]:
    """Every violated rule that ties a key to another (or a value to itself in a way JSON
    Schema cannot say), as "config key '<dotted key>': why". A disabled stage's keys are not
    checked: nothing reads them."""
    problems = []

    def bad(key, why):
        problems.append(f"config key '{key}': {why}")

    robust = cfg["robust"]
    if robust["enabled"] and not robust["plot_range"][0] < robust["plot_range"][1]:
        bad("robust.plot_range", f"need min < max, got {robust['plot_range']}")

    lista = cfg["lista"]
    if lista["enabled"]:
        if not any(m["enabled"] for m in lista["models"].values()):
            bad("lista.models", "enable at least one of lista, lista_cp, alista")
        sweep = lista["sweep"]
        if sweep["example_sparsity"] not in sweep["sparsity_levels"]:
            bad(
                "lista.sweep.example_sparsity",
                f"must be one of lista.sweep.sparsity_levels {sweep['sparsity_levels']}",
            )
        for name, s in lista["settings"].items():
            key = f"lista.settings.{name}"
            if s["n_val"] >= s["n_train"]:
                bad(
                    f"{key}.n_val",
                    f"validation pairs are held out of n_train = {s['n_train']}, "
                    "so n_val must be smaller",
                )
            if s["baseline_iters"] < s["depth"]:
                bad(
                    f"{key}.baseline_iters",
                    f"must be at least depth = {s['depth']} "
                    "(ISTA / FISTA are compared at as many iterations as layers)",
                )
            if s["noise_std"] and s["snr_db"] is not None:
                bad(f"{key}.snr_db", "give either noise_std or snr_db (the other 0 / null)")

    rpca = cfg["rpca"]
    if rpca["enabled"]:
        n_layers = rpca["model"]["n_layers"]
        frontier = rpca["frontier"]
        if frontier["enabled"] and n_layers not in frontier["depths"]:
            bad(
                "rpca.frontier.depths",
                f"must include rpca.model.n_layers = {n_layers} (the reference of the budget "
                "table)",
            )
        n_frames = rpca["data"]["n_frames"]
        if "video" in rpca["modes"] and rpca["evaluate"]["example_frame"] >= n_frames:
            bad("rpca.evaluate.example_frame", f"must be < rpca.data.n_frames = {n_frames}")

    ml = cfg["multilayer"]
    if ml["enabled"]:
        coh = ml["coherence"]
        n = coh["signal_dim"]
        if coh["max_sparsity"] > n:
            bad(
                "multilayer.coherence.max_sparsity",
                f"{coh['max_sparsity']} exceeds multilayer.coherence.signal_dim = {n}",
            )
        if "identity_hadamard" in coh["dictionaries"] and n & (n - 1):
            bad(
                "multilayer.coherence.signal_dim",
                f"identity_hadamard needs a power of two, got {n}",
            )
        layers = len(ml["model"]["dims"]) - 1
        if len(ml["pursuits"]["lambdas"]) != layers:
            bad(
                "multilayer.pursuits.lambdas",
                f"need one lambda per layer of multilayer.model.dims ({layers}), "
                f"got {ml['pursuits']['lambdas']}",
            )

    csc = cfg["csc"]
    if csc["enabled"]:
        widths, blocks = csc["model"]["widths"], csc["model"]["blocks"]
        if len(blocks) != len(widths):
            bad(
                "csc.model.blocks",
                f"need one entry per stage of csc.model.widths ({len(widths)}), got {blocks}",
            )
        res = csc["res_csc"]
        for key in ("kernel_sizes", "strides", "paddings"):
            if len(res[key]) != len(res["channels"]):
                bad(
                    f"csc.res_csc.{key}",
                    f"need one entry per layer of csc.res_csc.channels "
                    f"({len(res['channels'])}), got {res[key]}",
                )
        digits = csc["data"]["digits"]
        if csc["data"]["dataset"] == "digits":
            if digits["inner_size"] > digits["size"]:
                bad(
                    "csc.data.digits.inner_size",
                    f"{digits['inner_size']} exceeds csc.data.digits.size = {digits['size']}",
                )
            if digits["val_fraction"] + digits["test_fraction"] >= 1:
                bad(
                    "csc.data.digits.val_fraction",
                    "val_fraction + test_fraction must leave training digits (< 1)",
                )

    clip = cfg["clip"]
    if clip["enabled"] and clip["report_lambda"] not in clip["lambdas"]:
        bad("clip.report_lambda", f"{clip['report_lambda']} is not in clip.lambdas")
    return problems


def check_cross_keys(config: dict) -> None:
    """Raise :class:`ConfigError` listing every rule between keys that ``config`` (valid
    against the schema, defaults filled in) breaks. The only copy of these checks."""
    problems = _cross_key_problems(config)
    if problems:
        lines = "\n  ".join(problems)
        raise ConfigError(f"invalid configuration ({len(problems)} problem(s)):\n  {lines}")


def validate_config(config: dict, schema_path: str | Path = SCHEMA) -> dict:
    """Fill defaults into ``config``, validate it against the schema, then the rules between
    keys (:func:`check_cross_keys`); raise :class:`ConfigError` naming every bad key."""
    from jsonschema import Draft7Validator

    schema = load_schema(schema_path)
    fill_defaults(config, schema)
    errors = sorted(Draft7Validator(schema).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        lines = "\n  ".join(_describe(e) for e in errors)
        raise ConfigError(f"invalid configuration ({len(errors)} problem(s)):\n  {lines}")
    check_cross_keys(config)
    return config


def resolve_config(*files: str | Path, schema_path: str | Path = SCHEMA) -> dict:
    """The configuration a run with these config files sees: each file merged over the ones
    before it (:func:`merge_config`), then :func:`validate_config`. Pass
    ``config/config.yaml`` first, as the Snakefile does; no file: the defaults."""
    config: dict = {}
    for f in files:
        with open(f) as fh:
            merge_config(config, yaml.safe_load(fh) or {})
    return validate_config(config, schema_path)
