"""The config schema: defaults filled in, and bad keys stop the run naming the key."""

import copy

import pytest
import yaml
from helpers import ROOT, SCHEMA

from deepunfold.pipeline.config import (
    ConfigError,
    check_cross_keys,
    merge_config,
    resolve_config,
    validate_config,
)


def load(name):
    return yaml.safe_load((ROOT / "config" / name).read_text()) or {}


def test_shipped_configs_are_valid():
    resolve_config(ROOT / "config/config.yaml", schema_path=SCHEMA)
    resolve_config(ROOT / "config/config.yaml", ROOT / "config/demo.yaml", schema_path=SCHEMA)
    resolve_config(ROOT / "config/config.yaml", ROOT / "config/lista_fast.yaml")


def test_full_study_is_the_schema_defaults():
    """config/config.yaml repeats no default: the full study is the schema's defaults."""
    full = resolve_config(ROOT / "config/config.yaml", schema_path=SCHEMA)
    assert full == validate_config({}, SCHEMA)
    assert load("config.yaml") == {}


def test_demo_lists_only_what_differs():
    """Every value config/demo.yaml sets differs from the default (no default repeated)."""
    defaults = validate_config({}, SCHEMA)

    def same(demo, base, path=""):
        for key, value in demo.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                yield from same(value, base[key], f"{path}{key}.")
            elif base.get(key) == value:
                yield f"{path}{key}"

    assert list(same(load("demo.yaml"), defaults)) == []


def test_defaults_filled():
    cfg = validate_config({}, SCHEMA)
    assert cfg["robust"]["observations"] == [1, 1, 1, 6, 1, 1]
    assert cfg["robust"]["breakdown"]["n_trials"] == 500


@pytest.mark.parametrize(
    "patch, key",
    [
        ({"robust": {"grid_points": -3}}, "robust.grid_points"),
        ({"robust": {"observations": "1,1,6"}}, "robust.observations"),
        ({"robust": {"breakdown": {"n_trials": 0}}}, "robust.breakdown.n_trials"),
        ({"robust": {"tpyo": 1}}, "robust.tpyo"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_value_names_key(patch, key):
    cfg = copy.deepcopy(load("config.yaml"))
    merge_config(cfg, patch)
    with pytest.raises(ConfigError, match=f"'{key}'"):
        validate_config(cfg, SCHEMA)


# Rules between keys that the schema cannot state: check_cross_keys, their only copy.
CROSS_KEY = [
    ({"robust": {"plot_range": [8.0, -1.0]}}, "robust.plot_range"),
    ({"lista": {"sweep": {"example_sparsity": 0.33}}}, "lista.sweep.example_sparsity"),
    ({"lista": {"settings": {"seed": {"n_val": 9000}}}}, "lista.settings.seed.n_val"),
    (
        {"lista": {"settings": {"seed": {"baseline_iters": 8}}}},
        "lista.settings.seed.baseline_iters",
    ),
    ({"lista": {"settings": {"snr40": {"noise_std": 0.1}}}}, "lista.settings.snr40.snr_db"),
    (
        {"lista": {"models": {m: {"enabled": False} for m in ("lista", "lista_cp", "alista")}}},
        "lista.models",
    ),
    ({"rpca": {"frontier": {"depths": [1, 2]}}}, "rpca.frontier.depths"),
    ({"rpca": {"evaluate": {"example_frame": 20}}}, "rpca.evaluate.example_frame"),
    ({"multilayer": {"coherence": {"max_sparsity": 65}}}, "multilayer.coherence.max_sparsity"),
    ({"multilayer": {"coherence": {"signal_dim": 48}}}, "multilayer.coherence.signal_dim"),
    ({"multilayer": {"pursuits": {"lambdas": [0.1, 0.1, 0.1]}}}, "multilayer.pursuits.lambdas"),
    ({"clip": {"report_lambda": 0.3}}, "clip.report_lambda"),
]


@pytest.mark.parametrize("patch, key", CROSS_KEY)
def test_rules_between_keys_name_the_key(patch, key):
    with pytest.raises(ConfigError, match=f"config key '{key}'"):
        validate_config(copy.deepcopy(patch), SCHEMA)
    section = next(iter(patch))
    off = merge_config(copy.deepcopy(patch), {section: {"enabled": False}})
    validate_config(off, SCHEMA)  # a disabled stage's keys are not checked


def test_every_broken_rule_is_reported_at_once():
    cfg = {}
    for patch, _ in CROSS_KEY[:3]:
        merge_config(cfg, patch)
    with pytest.raises(ConfigError, match=r"\(3 problem\(s\)\)") as err:
        validate_config(cfg, SCHEMA)
    for _, key in CROSS_KEY[:3]:
        assert f"'{key}'" in str(err.value)
    check_cross_keys(validate_config({}, SCHEMA))  # the defaults break none


def test_video_example_frame_is_checked_only_in_video_mode():
    cfg = {"rpca": {"modes": ["frame"], "evaluate": {"example_frame": 20}}}
    validate_config(cfg, SCHEMA)


def test_one_copy_of_the_checks():
    """No rule file raises ConfigError itself: a second copy could never fire."""
    for smk in (ROOT / "workflow/rules").glob("*.smk"):
        assert "ConfigError" not in smk.read_text(), smk.name
