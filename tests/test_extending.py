"""docs/extending.md works as written: its model file, executed as a module of the package,
trains through the shared fit and survives save_model / load_model with identical outputs;
its other code blocks parse."""

import ast
import re
import sys
import types
from pathlib import Path

import pytest
import torch
import yaml

from deepunfold.data.sparse_signals import make_problem
from deepunfold.ops.metrics import nmse_db
from deepunfold.solvers.proximal_gradient import ista
from deepunfold.train.checkpoint import load_model, read_checkpoint, save_model

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
MODULE = "deepunfold.unfolded.tied_ista"

pytestmark = pytest.mark.usefixtures("one_thread")


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def tied():
    """The guide's model file as the module it names (removed again afterwards)."""
    (source,) = [b for b in _blocks("python") if b.startswith(f"# src/{MODULE.replace('.', '/')}")]
    module = types.ModuleType(MODULE)
    module.__file__ = str(GUIDE)
    sys.modules[MODULE] = module
    try:
        exec(compile(source, str(GUIDE), "exec"), module.__dict__)
        yield module
    finally:
        del sys.modules[MODULE]


@pytest.fixture(scope="module")
def problem():
    return make_problem(
        m=20, n=40, sparsity=0.9, noise_std=0.01, n_train=400, n_val=100, n_test=100, seed=2
    )


def test_untrained_model_is_ista(tied, problem):
    x, _ = problem.split("test")
    model = tied.TiedISTA(problem.A, 5, lam=0.1)
    with torch.no_grad():
        out = model(x)
    ref = ista(x, problem.A, 0.1, max_iter=5, tol=0.0, record_history=False).z
    torch.testing.assert_close(out, ref.float(), rtol=1e-4, atol=1e-5)


def test_guide_model_trains_with_fit_and_reloads_identically(tied, problem, tmp_path):
    x, z = problem.split("test")

    def train(seed):
        model = tied.TiedISTA(problem.A, 5, lam=0.1)
        res = tied.train_tied_ista(
            model,
            problem.split("train"),
            problem.split("val"),
            max_steps=120,
            batch_size=32,
            lr=5e-3,
            patience=3,
            seed=seed,
            eval_every=20,
        )
        return model, res

    untrained = tied.TiedISTA(problem.A, 5, lam=0.1)
    model, res = train(0)
    with torch.no_grad():
        before, trained_out = untrained(x), model(x)
    assert nmse_db(trained_out, z) < nmse_db(before, z) - 1.0
    assert res.history[0]["step"] == 0 and res.best == min(r["val_nmse_db"] for r in res.history)
    again, _ = train(0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )

    path = tmp_path / "tied.pt"
    save_model(model, path, setting="test")
    assert read_checkpoint(path)["class"] == f"{MODULE}.TiedISTA"
    back, meta = load_model(path, tied.TiedISTA, metadata=True)
    with torch.no_grad():
        assert torch.equal(back(x), trained_out)
    assert meta == {"setting": "test"} and torch.equal(back.config["A"], problem.A.float())


def test_the_guides_other_blocks_parse():
    python = _blocks("python")
    assert len(python) >= 4
    for block in python:
        if block.lstrip().startswith("rule "):
            continue  # Snakemake, not Python
        ast.parse(block)
    (schema,) = _blocks("yaml")
    keys = yaml.safe_load(schema)["tied"]["properties"]
    assert {"layers", "max_steps", "batch_size", "lr", "patience"} <= set(keys)
