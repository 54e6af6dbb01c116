r"""Task 6's study of the multi-layer pursuits: what the workflow's scripts report about them.

* :func:`support_recovery` and :func:`forward_support`: how well the forward pass (layered
  thresholding that knows each layer's cardinality) finds the supports, against noise;
* :func:`pursuit_errors`, :func:`reference_objective`, :func:`objective_gap` and
  :func:`oracle_thresholding`: the errors and objective gaps of layered basis pursuit, ML-ISTA
  and ML-FISTA against iterations, next to the one-shot forward pass
  (``results/multilayer/pursuits/pursuit_errors.tsv``).

The pursuits themselves are :mod:`deepunfold.solvers.multilayer`; the signals come from
:mod:`deepunfold.data.multilayer_signals`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from deepunfold.data.multilayer_signals import MultiLayerSignals, generate_signals
from deepunfold.ops.metrics import relative_error
from deepunfold.solvers.multilayer import (
    layered_basis_pursuit,
    layered_thresholding,
    matrix_layer,
    ml_fista,
    ml_ista,
    ml_objective,
)

__all__ = [
    "support_recovery",
    "forward_support",
    "PURSUITS",
    "pursuit_errors",
    "reference_objective",
    "objective_gap",
    "oracle_thresholding",
]

#: the iterative pursuits the study compares, in the order of its table
PURSUITS = {"layered BP": layered_basis_pursuit, "ML-ISTA": ml_ista, "ML-FISTA": ml_fista}


def support_recovery(
    estimates: Sequence[torch.Tensor], truths: Sequence[torch.Tensor]
) -> list[dict[str, float]]:
    r"""How well each layer's estimated support matches the true one, over a batch.

    For layer :math:`i` with estimated support :math:`\hat S_b = \{j: \hat\gamma_{i,bj} \ne
    0\}` and true support :math:`S_b` of signal :math:`b`:

    * ``exact_recovery``: fraction of signals with :math:`\hat S_b = S_b`;
    * ``support_overlap``: mean of :math:`|\hat S_b \cap S_b| / |S_b|`;
    * ``mean_true_nnz``: mean of :math:`|S_b|`.

    Args:
        estimates, truths: ``[gamma_1, ..., gamma_L]``, each ``(batch, n_i)``.

    Returns:
        one dict per layer, in layer order.
    """
    rows = []
    for g_hat, g in zip(estimates, truths, strict=True):
        s_hat, s = g_hat != 0, g != 0
        rows.append(
            {
                "exact_recovery": float((s_hat == s).all(dim=1).double().mean()),
                "support_overlap": float(((s_hat & s).sum(1) / s.sum(1)).mean()),
                "mean_true_nnz": float(s.sum(1).double().mean()),
            }
        )
    return rows


def forward_support(
    Ds: Sequence[torch.Tensor],
    n_signals: int,
    sparsity: int,
    noise_stds: Sequence[float],
    *,
    amplitude: tuple[float, float] = (1.0, 2.0),
    seed: int = 0,
) -> list[dict[str, float]]:
    r"""Support recovery of the forward pass (layered thresholding) against noise.

    At each noise level :math:`\sigma_j` of ``noise_stds``, ``n_signals`` signals of
    :func:`generate_signals` (seeded ``seed + 1 + j``) go through layered thresholding that
    knows each layer's true cardinality per signal (``keep``), so only the *positions* of the
    kept entries can be wrong; :func:`support_recovery` scores every layer.

    Returns:
        one row per (noise level, layer): ``noise_std``, ``layer`` (1-based), ``n_signals``
        and the :func:`support_recovery` columns.
    """
    layers = [matrix_layer(D) for D in Ds]
    rows = []
    for j, sigma in enumerate(noise_stds):
        sig = generate_signals(
            Ds, n_signals, sparsity, noise_std=sigma, amplitude=amplitude, seed=seed + 1 + j
        )
        keep = [(g != 0).sum(dim=1) for g in sig.gammas]
        est = layered_thresholding(sig.y, layers, None, keep=keep)
        for i, scores in enumerate(support_recovery(est, sig.gammas), start=1):
            rows.append({"noise_std": sigma, "layer": i, "n_signals": n_signals} | scores)
    return rows


def pursuit_errors(
    signals: MultiLayerSignals, Ds: Sequence[torch.Tensor], lams: Sequence[float], n_iter: int
) -> pd.DataFrame:
    r"""Every pursuit of :data:`PURSUITS` for ``n_iter`` iterations from zero, scored per
    iteration against the true codes.

    Returns:
        a long table, one row per (pursuit, iteration ``0..n_iter``): ``method``,
        ``iteration``, ``objective`` (of problem (P) of :mod:`deepunfold.solvers.multilayer`)
        and ``rel_error_<i>`` of every layer :math:`i`, each the mean over the signals.
    """
    rows = []
    for name, pursuit in PURSUITS.items():
        res = pursuit(signals.y, Ds, lams, n_iter, reference=signals.gammas)
        h = {k: v.mean(dim=1) for k, v in res.history.items()}
        frame = pd.DataFrame(
            {"iteration": range(n_iter + 1)} | {k: v.numpy() for k, v in h.items()}
        )
        frame.insert(0, "method", name)
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def reference_objective(
    y: torch.Tensor, Ds: Sequence[torch.Tensor], lams: Sequence[float], n_iter: int
) -> float:
    r"""The minimum :math:`F^*` of problem (P) the gaps are measured to: per signal, the least
    objective of an ``n_iter``-iteration ML-FISTA run (longer than the compared runs), then
    the mean over the signals."""
    f_star = ml_fista(y, Ds, lams, n_iter).history["objective"].min(dim=0)
    return float(f_star.values.mean())


def objective_gap(objective, f_star: float):
    r"""The relative objective gap :math:`(F - F^*) / |F^*|` (``objective`` a number, an
    array or a column)."""
    return (objective - f_star) / abs(f_star)


def oracle_thresholding(
    signals: MultiLayerSignals, Ds: Sequence[torch.Tensor], lams: Sequence[float]
) -> pd.DataFrame:
    r"""The forward pass (layered thresholding) with the oracle biases: every layer keeps, per
    signal, as many entries as the true code has (the best possible thresholds).

    Returns:
        one row, ``method`` = ``"layered thresholding"``, with the mean over the signals of
        ``rel_error_<i>`` of every layer and the ``objective`` of (P) at its deepest code.
    """
    keep = [(g != 0).sum(dim=1) for g in signals.gammas]
    lt = layered_thresholding(signals.y, [matrix_layer(D) for D in Ds], None, keep=keep)
    return pd.DataFrame(
        [
            {"method": "layered thresholding"}
            | {
                f"rel_error_{i + 1}": float(relative_error(g, t).mean())
                for i, (g, t) in enumerate(zip(lt, signals.gammas, strict=True))
            }
            | {"objective": float(ml_objective(signals.y, Ds, lt[-1], lams).mean())}
        ]
    )
