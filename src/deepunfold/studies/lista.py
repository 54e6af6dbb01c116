r"""Task 3's study of the classical solvers: ISTA and FISTA against the codes' sparsity.

The learned networks of :mod:`deepunfold.unfolded.lista` are compared with these solvers;
this module holds the study of the solvers alone (the ``lista_ista_study`` rule), which needs
no model.
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from deepunfold.ops.metrics import fraction_zeros, nmse_db
from deepunfold.solvers.proximal_gradient import fista, ista

__all__ = ["ista_sparsity_study"]


def ista_sparsity_study(
    sweep: dict[str, torch.Tensor], lam: float, max_iter: int, conv_tol: float
) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    r"""ISTA and FISTA on every sparsity level of a sweep
    (:func:`~deepunfold.data.sparse_signals.make_sparsity_sweep`).

    Both run ``max_iter`` iterations from zero (step ``1/L``). A signal has *converged* at
    the first iteration :math:`k` from which on its objective stays within a relative gap
    ``conv_tol`` of the best objective :math:`F^*` either solver reached,
    :math:`F(z^j) - F^* \le \text{conv\_tol}\cdot F^*` for all :math:`j \ge k`.

    Returns:
        summary: one row per (solver, sparsity): median / quartiles of the iterations to
            converge, fraction converged, test NMSE (dB) and fraction of zeros at the end.
        curves: ``{"<solver>_<term>": (L, max_iter + 1)}`` mean over signals of the total,
            reconstruction and l1 terms per iteration, plus ``"<solver>_z": (L, N, n)`` final codes.
    """
    A = sweep["A"]
    rows, curves = [], {}
    hist, finals = {}, {}
    for solver_name, solver in (("ista", ista), ("fista", fista)):
        per_level, zs = [], []
        for x in sweep["x"]:
            res = solver(x, A, lam, max_iter=max_iter, tol=0.0, record_history=True)
            per_level.append(res.history)
            zs.append(res.z)
        hist[solver_name], finals[solver_name] = per_level, torch.stack(zs)
    for li, level in enumerate(sweep["levels"].tolist()):
        best = torch.minimum(
            hist["ista"][li]["objective"].min(0).values,
            hist["fista"][li]["objective"].min(0).values,
        )
        for solver_name in ("ista", "fista"):
            obj = hist[solver_name][li]["objective"]  # (max_iter + 1, N)
            outside = (obj - best) > conv_tol * best.abs().clamp_min(1e-12)
            # last iteration outside the tolerance band, +1 (0 if always inside)
            idx = torch.arange(obj.shape[0]).unsqueeze(1).expand_as(obj)
            last_out = torch.where(outside, idx, torch.full_like(idx, -1)).max(0).values
            conv_iter = (last_out + 1).double()
            converged = last_out < obj.shape[0] - 1
            its = conv_iter[converged]
            q = its.quantile(torch.tensor([0.25, 0.5, 0.75], dtype=its.dtype)) if len(its) else None
            z_hat = finals[solver_name][li]
            rows.append(
                {
                    "solver": solver_name,
                    "sparsity": level,
                    "iterations_median": float(q[1]) if q is not None else math.nan,
                    "iterations_q25": float(q[0]) if q is not None else math.nan,
                    "iterations_q75": float(q[2]) if q is not None else math.nan,
                    "fraction_converged": float(converged.double().mean()),
                    "nmse_db": nmse_db(z_hat, sweep["z"][li]),
                    "fraction_zeros": fraction_zeros(z_hat),
                    "true_fraction_zeros": fraction_zeros(sweep["z"][li]),
                    "final_objective": float(obj[-1].mean()),
                }
            )
    for solver_name in ("ista", "fista"):
        for term in ("objective", "reconstruction", "l1"):
            curves[f"{solver_name}_{term}"] = torch.stack(
                [h[term].mean(1) for h in hist[solver_name]]
            )
        curves[f"{solver_name}_z"] = finals[solver_name]
    return pd.DataFrame(rows), curves
