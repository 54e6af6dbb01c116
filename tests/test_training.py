"""Early stopping keeps the best weights; divergence is caught with a clear message and never
leaves a checkpoint behind."""

import math

import pytest
import torch

from deepunfold.train.loop import (
    EarlyStopping,
    NonFiniteError,
    check_finite,
    load_checkpoint,
    save_checkpoint,
)


def _set(model, value):
    with torch.no_grad():
        model.weight.fill_(value)


def test_early_stopping_restores_the_first_best_weights():
    model = torch.nn.Linear(2, 1, bias=False)
    _set(model, 0.0)
    stopper = EarlyStopping(model, initial_loss=5.0, patience=2)
    # (weight after the epoch, its validation loss): best is 3.0 at weight 2; the tie at
    # weight 3 does not replace it, and the second evaluation without improvement stops
    improved = []
    for weight, loss in [(1.0, 4.0), (2.0, 3.0), (3.0, 3.0)]:
        _set(model, weight)
        improved.append(stopper.update(loss))
        assert not stopper.stop
    _set(model, 4.0)
    assert stopper.update(3.5) is False and stopper.stop
    assert improved == [True, True, False] and stopper.best == 3.0
    stopper.restore()
    assert float(model.weight[0, 0]) == 2.0


def test_early_stopping_without_improvement_restores_the_initial_weights():
    model = torch.nn.Linear(2, 1)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    stopper = EarlyStopping(model, initial_loss=1.0, patience=1)
    _set(model, 7.0)
    assert stopper.update(1.0) is False and stopper.stop
    stopper.restore()
    for k, v in model.state_dict().items():
        assert torch.equal(v, start[k]), k
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(model, 1.0, patience=0)


def test_check_finite():
    check_finite(1.0, "loss")
    check_finite(torch.ones(3), "grad")
    with pytest.raises(NonFiniteError, match="loss of layer 2 is not finite at step 7"):
        check_finite(math.nan, "loss of layer 2", step=7)
    with pytest.raises(NonFiniteError):
        check_finite(torch.tensor([1.0, math.inf]), "grad")


def test_checkpoint_roundtrip_and_nan_refused(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = tmp_path / "m.pt"
    save_checkpoint(model, path, epoch=3)
    other = torch.nn.Linear(3, 2)
    assert load_checkpoint(path, other)["epoch"] == 3
    torch.testing.assert_close(other.weight, model.weight)
    with torch.no_grad():
        model.weight[0, 0] = math.nan
    bad = tmp_path / "bad.pt"
    with pytest.raises(NonFiniteError, match="weight"):
        save_checkpoint(model, bad)
    assert not bad.exists() and list(tmp_path.iterdir()) == [path]


def test_foreign_checkpoint_rejected(tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_checkpoint_bytes_are_reproducible(tmp_path):
    """The same weights give the same bytes, whatever the (temporary) file name."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    save_checkpoint(model, tmp_path / "a.pt", step=1)
    save_checkpoint(model, tmp_path / "b.pt", step=1)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
