r"""AccAltProj: accelerated alternating projections for robust PCA (Cai, Cai & Wei, JMLR 2019).

Splits each observed matrix :math:`D = L + S` (low rank plus sparse) of a batch by alternating
a projection onto the rank-:math:`r` matrices with a hard threshold of the residual. The
acceleration is that the low-rank projection is taken on the tangent space of the rank-r
manifold at the current :math:`L_k = U_k\Sigma_k V_k^\top`, where it costs QR factorisations
of :math:`m\times r` and :math:`n\times r` blocks and one SVD of size :math:`2r\times 2r`,
instead of a truncated SVD of the whole matrix:

.. math::

    Z &= D - S_k,\qquad
    Q_1R_1 = (I - V_kV_k^\top)Z^\top U_k,\qquad Q_2R_2 = (I - U_kU_k^\top)ZV_k,\\
    M &= \begin{bmatrix} U_k^\top Z V_k & R_1^\top\\ R_2 & 0\end{bmatrix}
      = U_M\Sigma_M V_M^\top,\qquad
    U_{k+1} = [U_k, Q_2]\,U_M^{(r)},\quad V_{k+1} = [V_k, Q_1]\,V_M^{(r)},\\
    L_{k+1} &= U_{k+1}\Sigma_M^{(r)}V_{k+1}^\top,\qquad
    \zeta_{k+1} = \beta\,(\sigma_{r+1}(M) + \gamma^{k+1}\sigma_1(M)),\qquad
    S_{k+1} = \mathcal H_{\zeta_{k+1}}(D - L_{k+1}),

where :math:`\mathcal H_\zeta` keeps the entries of magnitude above :math:`\zeta`
(:func:`~deepunfold.ops.prox.hard_threshold`). Initialisation: :math:`S_{-1} =
\mathcal H_{\beta_0\sigma_1(D)}(D)`, :math:`L_0` the best rank-r approximation of
:math:`D - S_{-1}`, :math:`S_0 = \mathcal H_{\beta\sigma_1(L_0)}(D - L_0)`. Defaults are the
authors': :math:`\beta = 1/(2(mn)^{1/4})`, :math:`\beta_0 = 4\beta`, :math:`\gamma = 0.5`,
no trimming, stop once :math:`\|D - L - S\|_F / \|D\|_F` is below ``tol``.

The rank :math:`r` is an input: the method is **given the true rank**, an advantage over PCP
and the learned models, which find it themselves. Say so wherever it is compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepunfold.ops.prox import hard_threshold


@dataclass
class AccAltProjResult:
    """Low-rank and sparse parts ``(B, m, n)``, iterations and relative residual per matrix."""

    low: torch.Tensor
    sparse: torch.Tensor
    iterations: torch.Tensor
    residual: torch.Tensor
    converged: torch.Tensor


def _check(x: torch.Tensor, rank: int, gamma: float, max_iter: int) -> None:
    if x.ndim != 3:
        raise ValueError(f"accaltproj expects a batch of matrices (B, m, n), got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("accaltproj: the matrices contain NaN or infinite values")
    m, n = x.shape[-2:]
    if not 1 <= rank or 2 * rank > min(m, n):
        raise ValueError(f"rank must be in [1, min(m, n) / 2] = [1, {min(m, n) // 2}], got {rank}")
    if not 0.0 < gamma < 1.0:
        raise ValueError(f"gamma must be in (0, 1), got {gamma}")
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}")


def _threshold(x: torch.Tensor, zeta: torch.Tensor) -> torch.Tensor:
    return hard_threshold(x, zeta[:, None, None])


def accaltproj(
    x: torch.Tensor,
    rank: int,
    *,
    tol: float = 1e-5,
    max_iter: int = 100,
    beta: float | None = None,
    beta_init: float | None = None,
    gamma: float = 0.5,
) -> AccAltProjResult:
    """AccAltProj on a batch of matrices ``x`` ``(B, m, n)`` with target rank ``rank``.

    Each matrix stops on its own once its relative residual is below ``tol``; only the
    unconverged ones are iterated further. ``max_iter = 0`` returns the initialisation.
    Run it in float64 for ``tol`` below about 1e-6.
    """
    _check(x, rank, gamma, max_iter)
    b, m, n = x.shape
    beta = 1.0 / (2.0 * (m * n) ** 0.25) if beta is None else float(beta)
    beta_init = 4.0 * beta if beta_init is None else float(beta_init)
    r = rank
    normx = torch.linalg.matrix_norm(x).clamp_min(torch.finfo(x.dtype).tiny)

    # initialisation: one full SVD of D - S_{-1} per matrix
    sparse = _threshold(x, beta_init * torch.linalg.matrix_norm(x, ord=2))
    u, s, vh = torch.linalg.svd(x - sparse, full_matrices=False)
    u, sig, v = u[..., :r], s[..., :r], vh[..., :r, :].mT
    low = (u * sig[:, None, :]) @ v.mT
    sparse = _threshold(x - low, beta * sig[:, 0])
    residual = torch.linalg.matrix_norm(x - low - sparse) / normx
    iterations = torch.zeros(b, dtype=torch.long)

    active = torch.nonzero(residual >= tol).flatten()
    for t in range(1, max_iter + 1):
        if len(active) == 0:
            break
        xa, ua, va = x[active], u[active], v[active]
        z = xa - sparse[active]
        zv = z @ va
        ztu = z.mT @ ua
        q1, r1 = torch.linalg.qr(ztu - va @ (zv.mT @ ua))
        q2, r2 = torch.linalg.qr(zv - ua @ (ua.mT @ zv))
        top = torch.cat([ua.mT @ zv, r1.mT], dim=-1)
        bottom = torch.cat([r2, torch.zeros_like(r2)], dim=-1)
        um, sm, vmh = torch.linalg.svd(torch.cat([top, bottom], dim=-2))
        ua = torch.cat([ua, q2], dim=-1) @ um[..., :r]
        va = torch.cat([va, q1], dim=-1) @ vmh[..., :r, :].mT
        la = (ua * sm[:, None, :r]) @ va.mT
        zeta = beta * (sm[:, r] + gamma**t * sm[:, 0])
        sa = _threshold(xa - la, zeta)
        u[active], v[active], low[active], sparse[active] = ua, va, la, sa
        iterations[active] += 1
        res = torch.linalg.matrix_norm(xa - la - sa) / normx[active]
        residual[active] = res
        active = active[res >= tol]
    return AccAltProjResult(low, sparse, iterations, residual, residual < tol)
