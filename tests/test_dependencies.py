"""The three dependency lists agree: pyproject.toml is the source, the conda files follow it.

- environment.yml (the developer's conda environment) holds the runtime dependencies and the
  ``test`` and ``slurm`` extras, each with pyproject's version specifier;
- workflow/envs/deepunfold.yaml (the software of every rule, --software-deployment-method
  conda) holds the runtime dependencies except Snakemake itself, which runs the rules from
  outside that environment.

A package may sit in the conda list or under ``pip:`` (torch and open_clip_torch come from
PyPI); only its name and specifier are compared. Python, pip and the editable install of this
checkout are the conda files' own entries.
"""

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
ENV_EXTRAS = ("test", "slurm")  # the optional extras environment.yml installs
NOT_IN_RULE_ENV = {"snakemake"}  # runs the jobs; not needed inside the rules' environment
OWN_ENTRIES = re.compile(r"^(python|pip)([=<>!~ ].*)?$|^-e ")


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _specs(requirements) -> dict[str, str]:
    """{normalised name: specifier} of PEP 508 / conda match-spec strings."""
    out = {}
    for line in requirements:
        req = Requirement(line)
        out[_name(req.name)] = str(req.specifier)
    return out


def _conda(path: Path) -> dict[str, str]:
    deps = yaml.safe_load(path.read_text())["dependencies"]
    lines = []
    for dep in deps:
        lines.extend(dep["pip"] if isinstance(dep, dict) else [dep])
    return _specs(line for line in lines if not OWN_ENTRIES.match(line))


RUNTIME = _specs(PYPROJECT["dependencies"])
EXTRAS = {extra: _specs(PYPROJECT["optional-dependencies"][extra]) for extra in ENV_EXTRAS}


def _diff(expected: dict, actual: dict) -> list[str]:
    problems = [f"missing {n}{s}" for n, s in sorted(expected.items()) if n not in actual]
    problems += [
        f"not in pyproject.toml: {n}{s}" for n, s in sorted(actual.items()) if n not in expected
    ]
    problems += [
        f"{n}: {actual[n]!r} but pyproject.toml says {s!r}"
        for n, s in sorted(expected.items())
        if n in actual and actual[n] != s
    ]
    return problems


def test_environment_yml_matches_pyproject():
    expected = dict(RUNTIME)
    for specs in EXTRAS.values():
        expected.update(specs)
    assert _diff(expected, _conda(ROOT / "environment.yml")) == []


def test_rule_environment_matches_pyproject():
    expected = {n: s for n, s in RUNTIME.items() if n not in NOT_IN_RULE_ENV}
    assert _diff(expected, _conda(ROOT / "workflow/envs/deepunfold.yaml")) == []


@pytest.mark.parametrize("extra", ENV_EXTRAS)
def test_extras_agree_with_runtime_pins(extra):
    """An extra that repeats a runtime package must not pin it differently."""
    clash = {n: s for n, s in EXTRAS[extra].items() if n in RUNTIME and RUNTIME[n] != s}
    assert clash == {}


def test_the_check_sees_drift(tmp_path):
    """Drop one package from a copy of the rule environment: the comparison reports it."""
    env = yaml.safe_load((ROOT / "workflow/envs/deepunfold.yaml").read_text())
    env["dependencies"] = [d for d in env["dependencies"] if d != "threadpoolctl>=3.1"]
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump(env))
    expected = {n: s for n, s in RUNTIME.items() if n not in NOT_IN_RULE_ENV}
    assert _diff(expected, _conda(path)) == ["missing threadpoolctl>=3.1"]
