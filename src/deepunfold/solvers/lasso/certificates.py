r"""Optimality certificates of the Lasso: objective, KKT violation, duality gap, rounding bound.

For signals :math:`x` (rows of ``x``), a dictionary :math:`A` (atoms as columns) and codes
:math:`z` (rows of ``z``) these functions evaluate, per row, the full-scale Lasso of this
package, :math:`F_\lambda(z) = \|x - Az\|_2^2 + \lambda\|z\|_1` (see
:mod:`deepunfold.solvers.lasso` for its scale), and how far a code is from its minimiser:

* :func:`kkt_violation`: the largest violation of the optimality conditions, with the
  correlation :math:`g = 2A^\top(x - Az)`: :math:`g_j = \lambda\,\mathrm{sign}(z_j)` where
  :math:`z_j \ne 0`, :math:`|g_j| \le \lambda` where :math:`z_j = 0` (non-negative variant:
  :math:`g_j = \lambda` where :math:`z_j > 0`, :math:`g_j \le \lambda` where :math:`z_j = 0`),
  in the units of :math:`\lambda`;
* :func:`kkt_rounding_bound`: below which a violation cannot be told from zero in float64;
* :func:`duality_gap`: the relative duality gap, an upper bound on :math:`(F(z) -
  F^\star)/F(z)`.

:func:`kkt_from_correlation` and :func:`gap_from_residual` compute the same from a
correlation or residual the caller already has (one product instead of two).
"""

from __future__ import annotations

import torch

from deepunfold.solvers.lasso.options import check_lambda

__all__ = [
    "objective",
    "kkt_violation",
    "kkt_from_correlation",
    "kkt_rounding_bound",
    "duality_gap",
    "gap_from_residual",
]


def objective(x: torch.Tensor, A: torch.Tensor, z: torch.Tensor, lam: float) -> torch.Tensor:
    r""":math:`F_\lambda(z) = \|x - Az\|^2 + \lambda\|z\|_1` per row (the full scale).

    ``lam`` must be a finite number >= 0 (``ValueError`` naming it otherwise).
    """
    lam = check_lambda(lam, positive=False)
    return (x - z @ A.T).pow(2).sum(-1) + lam * z.abs().sum(-1)


def _correlation(x, A, z):
    """:math:`g = 2A^T(x - Az)` per row, ``(batch, c)``."""
    return 2.0 * (x - z @ A.T) @ A


def kkt_violation(
    x: torch.Tensor, A: torch.Tensor, z: torch.Tensor, lam: float, nonneg: bool = False
) -> torch.Tensor:
    r"""Largest violation of the Lasso optimality conditions per row (units of lambda).

    With :math:`g = 2A^\top(x - Az)`: on the support :math:`|g_j - \lambda\,
    \mathrm{sign}(z_j)|`, off it :math:`\max(|g_j| - \lambda, 0)` (non-negative variant:
    :math:`\max(g_j - \lambda, 0)`). Zero exactly at the minimiser. ``lam`` must be a finite
    number >= 0.
    """
    lam = check_lambda(lam, positive=False)
    return kkt_from_correlation(_correlation(x, A, z), z, lam, nonneg)


def rounding_factors(A: torch.Tensor) -> tuple[float, float]:
    """``(gamma, max atom norm)`` of :func:`kkt_rounding_bound`."""
    d, n = A.shape
    u = 2.0**-53
    m = d + n
    gam = m * u / (1.0 - m * u)
    return gam, float(torch.linalg.vector_norm(A, dim=0).max())


def kkt_rounding_bound(x: torch.Tensor, A: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r"""Per row, a bound on the float64 rounding error of the correlations :math:`g`.

    :math:`g_j = 2(a_j^\top x - \sum_k (a_j^\top a_k) z_k)` is computed from length-:math:`d`
    dot products and a sum over at most :math:`c` atoms, so its error is at most
    :math:`2\gamma_{d+c}\max_j\|a_j\|\,(\|x\| + \max_k\|a_k\|\,\|z\|_1)` with
    :math:`\gamma_m = mu/(1 - mu)`, :math:`u = 2^{-53}`. A KKT violation below it cannot be
    told from zero; for tiny lambdas (about :math:`10^{-7}\lambda_{\max}` on 50 x 100
    dictionaries) it exceeds ``tol * lambda``, and :func:`lasso_active_set` then accepts
    violations up to it (``info["rounding_limited"]`` counts those signals).
    """
    return rounding_bound(x, A, z.abs().sum(-1))


def rounding_bound(x: torch.Tensor, A: torch.Tensor, l1: torch.Tensor) -> torch.Tensor:
    """:func:`kkt_rounding_bound` from the codes' l1 norms ``l1``."""
    gam, amax = rounding_factors(A)
    xn = torch.linalg.vector_norm(x.to(torch.float64), dim=-1)
    return 2.0 * gam * amax * (xn + amax * l1.to(xn.device, xn.dtype))


def duality_gap(
    x: torch.Tensor, A: torch.Tensor, z: torch.Tensor, lam: float, nonneg: bool = False
) -> torch.Tensor:
    r"""Relative duality gap :math:`(F(z) - D(\theta)) / F(z)` per row.

    Half-scale primal :math:`P(z) = \tfrac12\|r\|^2 + \mu\|z\|_1` (:math:`r = x - Az`,
    :math:`\mu = \lambda/2`), dual :math:`D(\theta) = \tfrac12\|x\|^2 - \tfrac12\|x -
    \theta\|^2` over :math:`\|A^\top\theta\|_\infty \le \mu` (:math:`A^\top\theta \le \mu`
    for the non-negative variant), at the feasible point :math:`\theta = s\,r` with the
    largest admissible :math:`s \le 1`. :math:`P - D \ge P - P^\star \ge 0`. ``lam`` must be
    a finite number >= 0.
    """
    lam = check_lambda(lam, positive=False)
    r = x - z @ A.T
    return gap_from_residual(x, r, r @ A, z, lam, nonneg)


def gap_from_residual(x, r, ar, z, lam, nonneg):
    """:func:`duality_gap` from the residual ``r = x - Az`` and ``ar = A^T r``."""
    mu = lam / 2.0
    worst = ar.amax(-1) if nonneg else ar.abs().amax(-1)
    s = torch.where(worst > mu, mu / worst.clamp_min(1e-300), torch.ones_like(worst))
    theta = s.unsqueeze(-1) * r
    primal = 0.5 * r.pow(2).sum(-1) + mu * z.abs().sum(-1)
    dual = 0.5 * x.pow(2).sum(-1) - 0.5 * (x - theta).pow(2).sum(-1)
    return ((primal - dual) / primal.clamp_min(1e-300)).clamp_min(0.0)


def kkt_from_correlation(g, z, lam, nonneg):
    r"""Largest KKT violation per row from the correlations ``g = 2(c - Gz)``.

    Off the support :math:`\max(|g_j| - \lambda, 0)`; on it :math:`|g_j -
    \lambda\,\mathrm{sign}(z_j)|`, which is at least :math:`|g_j| - \lambda`, so the
    maximum of the first over all atoms and the second over the support is the same value
    with fewer passes over the dense ``(b, c)`` arrays (the support is sparse).
    """
    lam = torch.as_tensor(lam, dtype=g.dtype, device=g.device)
    lam_row = lam.reshape(-1) if lam.numel() > 1 else lam.reshape(1).expand(g.shape[0])
    top = g.amax(-1) if nonneg else torch.maximum(g.amax(-1), -g.amin(-1))
    out = torch.relu(top - lam_row)
    rows, cols = torch.nonzero(z, as_tuple=True)
    if rows.numel():
        on = (g[rows, cols] - lam_row[rows] * torch.sign(z[rows, cols])).abs()
        out = out.scatter_reduce(0, rows, on, reduce="amax")
    return out
