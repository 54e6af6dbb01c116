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


def default_beta(m: int, n: int) -> float:
    r"""The authors' threshold constant :math:`\beta = 1/(2(mn)^{1/4})`."""
    return 1.0 / (2.0 * (m * n) ** 0.25)


@dataclass
class Factors:
    r"""A batch of rank-r matrices :math:`U\,\mathrm{diag}(\sigma)\,V^\top`: ``u`` ``(B, m, r)``
    and ``v`` ``(B, n, r)`` with orthonormal columns, ``sigma`` ``(B, r)``."""

    u: torch.Tensor
    sigma: torch.Tensor
    v: torch.Tensor

    def matrix(self) -> torch.Tensor:
        return (self.u * self.sigma[:, None, :]) @ self.v.mT


def truncated_svd(x: torch.Tensor, rank: int) -> Factors:
    """The best rank-``rank`` approximation of every matrix of ``x`` (one full thin SVD)."""
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    return Factors(u[..., :rank], s[..., :rank], vh[..., :rank, :].mT)


def initialise(x: torch.Tensor, rank: int, beta: float, beta_init: float):
    r"""AccAltProj's initialisation: ``(factors of L_0, S_0)``.

    :math:`S_{-1} = \mathcal H_{\beta_0\sigma_1(D)}(D)`, :math:`L_0` the rank-r truncation of
    :math:`D - S_{-1}`, :math:`S_0 = \mathcal H_{\beta\sigma_1(L_0)}(D - L_0)`.
    """
    sparse = _threshold(x, beta_init * torch.linalg.matrix_norm(x, ord=2))
    f = truncated_svd(x - sparse, rank)
    sparse = _threshold(x - f.matrix(), beta * f.sigma[:, 0])
    return f, sparse


def tangent_update(x: torch.Tensor, sparse: torch.Tensor, f: Factors):
    r"""One low-rank step: the rank-r truncation of :math:`D - S_k` projected on the tangent
    space at :math:`L_k` (QR of two thin blocks and one :math:`2r\times 2r` SVD).

    Returns the new factors and all :math:`2r` singular values of :math:`M` (``(B, 2r)``),
    from which AccAltProj's threshold :func:`schedule` is read.
    """
    r = f.u.shape[-1]
    u, v = f.u, f.v
    z = x - sparse
    zv = z @ v
    ztu = z.mT @ u
    q1, r1 = torch.linalg.qr(ztu - v @ (zv.mT @ u))
    q2, r2 = torch.linalg.qr(zv - u @ (u.mT @ zv))
    top = torch.cat([u.mT @ zv, r1.mT], dim=-1)
    bottom = torch.cat([r2, torch.zeros_like(r2)], dim=-1)
    um, sm, vmh = torch.linalg.svd(torch.cat([top, bottom], dim=-2))
    u = torch.cat([u, q2], dim=-1) @ um[..., :r]
    v = torch.cat([v, q1], dim=-1) @ vmh[..., :r, :].mT
    return Factors(u, sm[:, :r], v), sm


def schedule(sm: torch.Tensor, rank: int, beta: float, gamma: float, t: int) -> torch.Tensor:
    r"""AccAltProj's threshold of iteration ``t``: :math:`\zeta_t = \beta(\sigma_{r+1}(M) +
    \gamma^t\sigma_1(M))` per matrix, from the singular values ``sm`` of :func:`tangent_update`."""
    return beta * (sm[:, rank] + gamma**t * sm[:, 0])


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
    Run it in float64 for ``tol`` below about 1e-6. The pieces (:func:`initialise`,
    :func:`tangent_update`, :func:`schedule`, the hard threshold) are public: the learned
    RPCA (:mod:`deepunfold.unfolded.lrpca`) runs them as its AccAltProj special case.
    """
    _check(x, rank, gamma, max_iter)
    b, m, n = x.shape
    beta = default_beta(m, n) if beta is None else float(beta)
    beta_init = 4.0 * beta if beta_init is None else float(beta_init)
    normx = torch.linalg.matrix_norm(x).clamp_min(torch.finfo(x.dtype).tiny)

    f, sparse = initialise(x, rank, beta, beta_init)
    u, v, low = f.u, f.v, f.matrix()
    residual = torch.linalg.matrix_norm(x - low - sparse) / normx
    iterations = torch.zeros(b, dtype=torch.long)

    active = torch.nonzero(residual >= tol).flatten()
    for t in range(1, max_iter + 1):
        if len(active) == 0:
            break
        xa = x[active]
        fa, sm = tangent_update(xa, sparse[active], Factors(u[active], f.sigma[active], v[active]))
        la = fa.matrix()
        sa = _threshold(xa - la, schedule(sm, rank, beta, gamma, t))
        u[active], v[active], low[active], sparse[active] = fa.u, fa.v, la, sa
        iterations[active] += 1
        res = torch.linalg.matrix_norm(xa - la - sa) / normx[active]
        residual[active] = res
        active = active[res >= tol]
    return AccAltProjResult(low, sparse, iterations, residual, residual < tol)
