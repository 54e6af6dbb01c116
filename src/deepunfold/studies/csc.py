"""Task 7's robustness study: a ResNet against SDNet under Gaussian input noise, SDNet with
the trained lambda and with lambda raised at test time, chosen per noise level on validation
data (SDNet's robust inference)."""

from __future__ import annotations

import pandas as pd
from torch import nn

from deepunfold.data.images import ImageData
from deepunfold.train.loop import accuracy
from deepunfold.unfolded.csc import ResNet, set_test_lambda

__all__ = ["trained_lambda", "robustness_study"]


def trained_lambda(sdnet: ResNet) -> float:
    """The CSC stem's trained lambda, rounded as it is written in the config (6 digits of the
    float32 buffer)."""
    return float(f"{float(sdnet.stem.lam):.6g}")


def robustness_study(
    cnn: nn.Module,
    sdnet: ResNet,
    data: ImageData,
    noise_stds,
    lambda_factors,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accuracy of both models under each noise level, and of SDNet with the best test lambda.

    The lambdas tried are the trained one times each of ``lambda_factors`` (and the trained
    one itself); per noise level the one of the best validation accuracy wins (ties: the
    smaller). Validation and test noise are distinct draws (seeds ``seed + 1`` and
    ``seed + 2``), the same draw for every model and lambda.

    Returns:
        table: per noise level, rows ``cnn``, ``sdnet`` (trained lambda) and ``sdnet_tuned``
            with ``noise_std``, ``model``, ``lambda`` (NaN for the CNN), ``val_accuracy``,
            ``test_accuracy``.
        sweep: the validation accuracy of every (noise level, lambda) of SDNet.
    """
    lam0 = trained_lambda(sdnet)
    lambdas = sorted({lam0, *(lam0 * f for f in lambda_factors)})
    val_seed, test_seed = seed + 1, seed + 2

    def score(model, split, noise_std, lam=None):
        """Accuracy on the noisy val or test images with the CSC layers' lambda set to ``lam``."""
        set_test_lambda(model, lam)
        x, y = (data.x_val, data.y_val) if split == "val" else (data.x_test, data.y_test)
        split_seed = val_seed if split == "val" else test_seed
        acc, _ = accuracy(model, x, y, noise_std=noise_std, seed=split_seed)
        set_test_lambda(model, None)
        return acc

    def row(name, model, s, lam=None):
        """One table row; ``lam=None`` is the model's own (trained) lambda."""
        shown = float("nan") if model is cnn else lam0 if lam is None else lam
        return {
            "noise_std": s,
            "model": name,
            "lambda": shown,
            "val_accuracy": score(model, "val", s, lam),
            "test_accuracy": score(model, "test", s, lam),
        }

    rows, sweep = [], []
    for s in noise_stds:
        val = {lam: score(sdnet, "val", s, lam) for lam in lambdas}
        sweep += [{"noise_std": s, "lambda": lam, "val_accuracy": a} for lam, a in val.items()]
        best = max(lambdas, key=lambda lam, val=val: (val[lam], -lam))  # ties: the smaller
        rows += [row("cnn", cnn, s), row("sdnet", sdnet, s), row("sdnet_tuned", sdnet, s, best)]
    return pd.DataFrame(rows), pd.DataFrame(sweep)
