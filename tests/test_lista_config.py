"""Task 3 configuration: the schema and the checks between keys reject impossible settings,
naming the key."""

import copy
from pathlib import Path

import pytest
import yaml

from deepunfold.pipeline.config import ConfigError, resolve_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
FULL = resolve_config(ROOT / "config/config.yaml", schema_path=SCHEMA)


def _with(section_patch):
    cfg = copy.deepcopy(FULL)
    for dotted, value in section_patch.items():
        *path, last = dotted.split(".")
        node = cfg
        for key in path:
            node = node[key]
        node[last] = value
    return cfg


def test_shipped_lista_sections_are_valid():
    cfg = validate_config(copy.deepcopy(FULL), SCHEMA)
    assert set(cfg["lista"]["settings"]) == {"seed", "snr40", "noiseless"}
    assert cfg["lista"]["settings"]["seed"]["n_train"] == 9000
    assert cfg["lista"]["settings"]["snr40"]["snr_db"] == 40
    assert cfg["lista"]["settings"]["noiseless"]["snr_db"] is None


def test_defaults_filled_without_a_lista_section():
    cfg = validate_config({}, SCHEMA)
    assert cfg["lista"]["training"]["lr_decays"] == [0.2, 0.02]
    assert cfg["lista"]["models"]["alista"]["support_selection"] is True
    assert cfg["lista"]["settings"]["snr40"]["depth"] == 16


@pytest.mark.parametrize(
    "patch, key",
    [
        ({"lista.settings.seed.depth": 0}, "lista.settings.seed.depth"),
        ({"lista.settings.snr40.sparsity": -0.1}, "lista.settings.snr40.sparsity"),
        ({"lista.settings.seed.sparsity": 1.0}, "lista.settings.seed.sparsity"),
        ({"lista.sweep.sparsity_levels": [0.5, -0.2]}, "lista.sweep.sparsity_levels.1"),
        ({"lista.training.lr": 0}, "lista.training.lr"),
        ({"lista.training.max_steps": 0}, "lista.training.max_steps"),
        ({"lista.models.lista.tied": True}, "lista.models.lista.tied"),
        ({"lista.settings.seed.n_tset": 5}, "lista.settings.seed.n_tset"),
        # checks between keys (check_cross_keys)
        ({"lista.settings.snr40.n_val": 50000}, "lista.settings.snr40.n_val"),
        ({"lista.settings.seed.baseline_iters": 8}, "lista.settings.seed.baseline_iters"),
        ({"lista.settings.snr40.noise_std": 0.1}, "lista.settings.snr40.snr_db"),
        ({"lista.sweep.example_sparsity": 0.33}, "lista.sweep.example_sparsity"),
        (
            {f"lista.models.{m}.enabled": False for m in ("lista", "lista_cp", "alista")},
            "lista.models",
        ),
    ],
)
def test_bad_lista_values_name_the_key(patch, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        validate_config(_with(patch), SCHEMA)


def test_setting_missing_a_key_is_rejected():
    """A new setting must give every key; one of the default settings (seed, snr40,
    noiseless) is completed from its default, as a file merged over the full study is."""
    cfg = copy.deepcopy(FULL)
    cfg["lista"]["settings"]["extra"] = dict(cfg["lista"]["settings"]["seed"])
    del cfg["lista"]["settings"]["extra"]["depth"]
    with pytest.raises(ConfigError, match="'depth' is a required property"):
        validate_config(cfg, SCHEMA)
    partial = {"lista": {"settings": {"seed": {"depth": 4}}}}
    seed = validate_config(partial, SCHEMA)["lista"]["settings"]["seed"]
    assert seed == {**FULL["lista"]["settings"]["seed"], "depth": 4}


def test_fast_schedule_override_is_valid():
    fast = yaml.safe_load((ROOT / "config/lista_fast.yaml").read_text())
    cfg = copy.deepcopy(FULL)
    cfg["lista"]["training"].update(fast["lista"]["training"])
    cfg = validate_config(cfg, SCHEMA)
    assert cfg["lista"]["training"]["lr"] == 5e-3 and cfg["lista"]["training"]["max_steps"] == 300
    assert set(fast) == {"lista"} and set(fast["lista"]) == {"training"}
