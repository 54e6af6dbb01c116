"""The config schema: defaults filled in, and bad keys stop the run naming the key."""

import copy
from pathlib import Path

import pytest
import yaml

from deepunfold.pipeline.config import ConfigError, validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def load(name):
    return yaml.safe_load((ROOT / "config" / name).read_text())


def test_shipped_configs_are_valid():
    validate_config(load("config.yaml"), SCHEMA)
    merged = load("config.yaml")
    _deep_update(merged, load("demo.yaml"))
    validate_config(merged, SCHEMA)


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
    _deep_update(cfg, patch)
    with pytest.raises(ConfigError, match=f"'{key}'"):
        validate_config(cfg, SCHEMA)


def _deep_update(base, patch):
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = v
