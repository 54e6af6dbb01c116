"""Training utilities shared by every learned model: early stopping, divergence checks,
checkpoints.

:class:`EarlyStopping` is the one early stopping with best-weights restore of the trainers
(LISTA's layer-wise stages, the unfolded RPCA's epochs). A training run that diverges must
fail loudly and leave no checkpoint behind that a later run could mistake for a trained
model; a checkpoint is written atomically, only once training finished with finite weights.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch

from deepunfold.io import atomic_path

__all__ = [
    "EarlyStopping",
    "NonFiniteError",
    "check_finite",
    "count_parameters",
    "save_checkpoint",
    "load_checkpoint",
]


class EarlyStopping:
    """Keep the weights of the best validation loss; stop after ``patience`` bad evaluations.

    Created with the loss of the current weights (the initialisation counts as a
    candidate, so training that never improves restores it). Each :meth:`update` with a new
    validation loss either records a new best (strictly lower: ties keep the earlier
    weights) and copies ``model.state_dict()``, or counts one more evaluation without
    improvement; :attr:`stop` turns true once ``patience`` of those follow the last best.
    :meth:`restore` loads the best weights back into ``model``.

    Args:
        model: the module being trained (its current state is the first snapshot).
        initial_loss: validation loss of the current weights.
        patience: evaluations without improvement before :attr:`stop` (at least 1).
    """

    def __init__(self, model: torch.nn.Module, initial_loss: float, patience: int):
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}")
        self.model, self.patience = model, int(patience)
        self.best = initial_loss
        self.best_state = copy.deepcopy(model.state_dict())
        self.bad = 0
        self.stop = False

    def update(self, loss: float) -> bool:
        """Record a validation loss; returns whether it is a new best."""
        if loss < self.best:
            self.best, self.bad, self.stop = loss, 0, False
            self.best_state = copy.deepcopy(self.model.state_dict())
            return True
        self.bad += 1
        self.stop = self.bad >= self.patience
        return False

    def restore(self) -> None:
        """Load the best weights seen (possibly the initial ones) into the model."""
        self.model.load_state_dict(self.best_state)


class NonFiniteError(FloatingPointError):
    """A loss, gradient or parameter became NaN or infinite during training."""


def check_finite(value, what: str, step: int | None = None) -> None:
    """Raise :class:`NonFiniteError` if ``value`` (a number or tensor) has NaN/inf entries.

    Args:
        value: the loss (float or tensor), or any tensor.
        what: what it is, for the message (``"training loss of LISTA layer 3"``).
        step: the optimisation step, for the message.
    """
    if isinstance(value, torch.Tensor):
        ok = bool(torch.isfinite(value).all())
    else:
        ok = math.isfinite(float(value))
    if not ok:
        where = f" at step {step}" if step is not None else ""
        raise NonFiniteError(
            f"{what} is not finite{where}: training diverged (lower the learning rate or check "
            "the data). No checkpoint was written."
        )


def count_parameters(model: torch.nn.Module | None) -> int:
    """Number of trainable scalars of ``model`` (``None``, e.g. ISTA/FISTA, has none)."""
    if model is None:
        return 0
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_checkpoint(model: torch.nn.Module, path: str | Path, **extra) -> None:
    """Save ``model.state_dict()`` plus ``extra`` metadata atomically, refusing NaN weights."""
    state = model.state_dict()
    for name, tensor in state.items():
        if tensor.is_floating_point():
            check_finite(tensor, f"parameter {name!r}")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        # a file object, not a path: torch.save writes a path's name into the archive, and
        # the temporary name would make every checkpoint's bytes differ
        torch.save({"state_dict": state, **extra}, f)


def load_checkpoint(path: str | Path, model: torch.nn.Module | None = None) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (into ``model`` if given)."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RuntimeError(
            f"{path} is not a readable checkpoint ({err}); delete it and rerun"
        ) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise RuntimeError(f"{path} is not a deepunfold checkpoint (no 'state_dict'); rerun")
    if model is not None:
        model.load_state_dict(ckpt["state_dict"])
    return ckpt
