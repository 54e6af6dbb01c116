"""Divergence is caught with a clear message and never leaves a checkpoint behind."""

import math

import pytest
import torch

from deepunfold.train.loop import NonFiniteError, check_finite, load_checkpoint, save_checkpoint


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
