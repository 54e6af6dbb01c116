r"""Sparse concept codes of (aligned) embeddings: the Lasso over a concept dictionary.

For each aligned image embedding :math:`z \in \mathbb R^d` and the aligned concept dictionary
:math:`A \in \mathbb R^{d \times c}` (one unit-norm concept per column), the code is

.. math::
    w^\star = \arg\min_w\ F_\lambda(w) = \|z - A w\|_2^2 + \lambda \|w\|_1
    \qquad (\text{optionally } w \ge 0),

in the **scale of seed 001** (no factor 1/2 on the squared error, so its lambda sweep
{0.01, ..., 5} means the same here). The foundation solvers
(:mod:`deepunfold.solvers.proximal_gradient`) minimise :math:`\tfrac12\|z - Aw\|^2 + \mu\|w\|_1`;
since :math:`F_\lambda = 2(\tfrac12\|z -
Aw\|^2 + \tfrac{\lambda}{2}\|w\|_1)` the two have the same minimiser with :math:`\mu =
\lambda/2`, and a gradient step :math:`\eta` on :math:`F_\lambda` (the seed's "learning rate",
gradient :math:`2A^\top(Aw - z)`) is a step :math:`2\eta` on the half-scale objective.

Optimality (KKT) conditions, with the correlation :math:`g = 2A^\top(z - Aw)`:

.. math::
    g_j = \lambda\,\mathrm{sign}(w_j) \ (w_j \ne 0), \qquad |g_j| \le \lambda \ (w_j = 0),

(non-negative variant: :math:`g_j = \lambda` where :math:`w_j > 0`, :math:`g_j \le \lambda`
where :math:`w_j = 0`). Every solve reports the largest violation of these conditions
(:func:`kkt_violation`, same units as :math:`\lambda`) and the relative duality gap
(:func:`duality_gap`), an upper bound on :math:`(F(w) - F^\star)/F(w)`.

Solvers (:func:`sparse_code`):

* ``"ista"``: the seed's algorithm (fixed step, fixed iteration count possible),
* ``"fista"``: accelerated proximal gradient (:func:`deepunfold.solvers.proximal_gradient.fista`),
* ``"active_set"``: the fast solver for this shape (many signals, ~1,000 atoms, sparse
  solutions), :func:`lasso_active_set`: a few FISTA iterations find an approximate support;
  batched *feature-sign* steps (exact Cholesky solves on the support with fixed signs, the
  best of the sign changes on the way and the sign projection, all KKT violators entering at
  once) make it exact; every signal stops as soon as its KKT violation is below the tolerance.
  Signals whose support comes near the rank of the dictionary (small lambda) follow a
  decreasing sequence of lambdas from zero instead (continuation), which keeps every step's
  support below the rank.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from deepunfold.solvers.proximal_gradient import Momentum, fista, ista, lipschitz_constant

__all__ = [
    "SOLVERS",
    "CodeResult",
    "objective",
    "kkt_violation",
    "duality_gap",
    "lasso_active_set",
    "sparse_code",
    "codes_to_csr",
    "csr_nbytes",
    "reconstruct",
    "zero_shot_predict",
    "concept_counts",
    "synthetic_concept_instance",
    "write_codes",
    "read_codes",
]

log = logging.getLogger("deepunfold")

SOLVERS = ("active_set", "fista", "ista")


@dataclass
class CodeResult:
    """Codes of a batch of signals and how well they solve the Lasso.

    Attributes:
        w: ``(batch, c)`` codes (float64).
        objective: ``(batch,)`` :math:`F_\\lambda(w)` in the seed's scale.
        kkt: ``(batch,)`` largest violation of the optimality conditions (units of lambda).
        gap: ``(batch,)`` relative duality gap (bounds the relative sub-optimality).
        n_iter: iterations run (proximal-gradient iterations, plus feature-sign rounds for
            the active-set solver).
        seconds: wall time of the solve.
        info: solver-specific counters.
    """

    w: torch.Tensor
    objective: torch.Tensor
    kkt: torch.Tensor
    gap: torch.Tensor
    n_iter: int
    seconds: float
    info: dict = field(default_factory=dict)

    @property
    def nnz(self) -> torch.Tensor:
        return (self.w != 0).sum(-1)


def objective(z: torch.Tensor, A: torch.Tensor, w: torch.Tensor, lam: float) -> torch.Tensor:
    r""":math:`F_\lambda(w) = \|z - Aw\|^2 + \lambda\|w\|_1` per row (seed scale)."""
    return (z - w @ A.T).pow(2).sum(-1) + lam * w.abs().sum(-1)


def _correlation(z, A, w):
    """:math:`g = 2A^T(z - Aw)` per row, ``(batch, c)``."""
    return 2.0 * (z - w @ A.T) @ A


def kkt_violation(
    z: torch.Tensor, A: torch.Tensor, w: torch.Tensor, lam: float, nonneg: bool = False
) -> torch.Tensor:
    r"""Largest violation of the Lasso optimality conditions per row (units of lambda).

    With :math:`g = 2A^\top(z - Aw)`: on the support :math:`|g_j - \lambda\,
    \mathrm{sign}(w_j)|`, off it :math:`\max(|g_j| - \lambda, 0)` (non-negative variant:
    :math:`\max(g_j - \lambda, 0)`). Zero exactly at the minimiser.
    """
    return _kkt_from_correlation(_correlation(z, A, w), w, lam, nonneg)


def duality_gap(
    z: torch.Tensor, A: torch.Tensor, w: torch.Tensor, lam: float, nonneg: bool = False
) -> torch.Tensor:
    r"""Relative duality gap :math:`(F(w) - D(\theta)) / F(w)` per row.

    Half-scale primal :math:`P(w) = \tfrac12\|r\|^2 + \mu\|w\|_1` (:math:`r = z - Aw`,
    :math:`\mu = \lambda/2`), dual :math:`D(\theta) = \tfrac12\|z\|^2 - \tfrac12\|z -
    \theta\|^2` over :math:`\|A^\top\theta\|_\infty \le \mu` (:math:`A^\top\theta \le \mu`
    for the non-negative variant), at the feasible point :math:`\theta = s\,r` with the
    largest admissible :math:`s \le 1`. :math:`P - D \ge P - P^\star \ge 0`.
    """
    r = z - w @ A.T
    return _gap_from_residual(z, r, r @ A, w, lam, nonneg)


def _gap_from_residual(z, r, ar, w, lam, nonneg):
    """:func:`duality_gap` from the residual ``r = z - Aw`` and ``ar = A^T r``."""
    mu = lam / 2.0
    worst = ar.amax(-1) if nonneg else ar.abs().amax(-1)
    s = torch.where(worst > mu, mu / worst.clamp_min(1e-300), torch.ones_like(worst))
    theta = s.unsqueeze(-1) * r
    primal = 0.5 * r.pow(2).sum(-1) + mu * w.abs().sum(-1)
    dual = 0.5 * z.pow(2).sum(-1) - 0.5 * (z - theta).pow(2).sum(-1)
    return ((primal - dual) / primal.clamp_min(1e-300)).clamp_min(0.0)


def _pad_supports(mask: torch.Tensor):
    """Indices of the True entries of each row, padded to the longest row.

    Returns ``(idx, valid)``: ``(batch, p)`` long indices and the ``(batch, p)`` bool mask of
    real entries. Padding position ``j`` points at column ``c + j`` (``c = mask.shape[1]``), a
    column of the identity block of the extended Gram matrix (:func:`_extended_gram`), so a
    gathered Gram block is the identity on its padding and needs no masking.
    """
    n = mask.shape[1]
    counts = mask.sum(-1)
    p = int(counts.max()) if mask.numel() else 0
    # stable sort puts True entries first in their original order
    order = torch.argsort((~mask).to(torch.int8), dim=-1, stable=True)[:, :p]
    pos = torch.arange(p, device=mask.device).unsqueeze(0)
    valid = pos < counts.unsqueeze(-1)
    return torch.where(valid, order, n + pos), valid


def _extended_gram(G: torch.Tensor) -> torch.Tensor:
    """``blockdiag(G, I_c)``: the Gram matrix with one identity column per padding position."""
    n = G.shape[0]
    Ge = torch.zeros(2 * n, 2 * n, dtype=G.dtype, device=G.device)
    Ge[:n, :n] = G
    Ge.diagonal()[n:] = 1.0
    return Ge


def _cholesky(M: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Batched lower Cholesky factors of symmetric positive (semi)definite ``M``.

    In float64 NumPy's batched LAPACK call is about 1.6x as fast as torch's here, in float32
    torch's about 1.3x as fast as NumPy's (and faster than either in float64). If a
    factorisation fails, a tiny ridge, a little above rounding and grown until it succeeds,
    rescues the rare singular :math:`G_{SS}` (a support larger than the rank). Returns ``(L,
    ridged)``, the factors and which matrices needed the ridge or are numerically singular.
    """
    L = None
    if M.dtype == torch.float64:
        try:
            L = torch.from_numpy(np.linalg.cholesky(M.numpy()))
            bad = torch.zeros(M.shape[0], dtype=torch.bool)
        except np.linalg.LinAlgError:  # one failure fails the batch: find which
            pass
    if L is None:
        L, info = torch.linalg.cholesky_ex(M)
        bad = info != 0
    # a pivot near rounding means M is numerically singular: treat it as a failure
    piv = L.diagonal(dim1=-2, dim2=-1).pow(2)
    bad = bad | (piv.amin(-1) <= 1e-12 * piv.amax(-1))
    ridged = bad.clone()
    scale = max(1e-10, 100 * torch.finfo(M.dtype).eps * M.shape[-1])
    while bool(bad.any()):
        Mb = M[bad].clone()
        ridge = scale * Mb.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1.0)
        Mb.diagonal(dim1=-2, dim2=-1).add_(ridge.unsqueeze(-1))
        Lb, info_b = torch.linalg.cholesky_ex(Mb)
        L[bad] = Lb
        bad[bad.clone()] = info_b != 0
        scale *= 100
    return L, ridged


def _chol_solve(L: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve :math:`L L^T x = r` for ``(b, p)`` or ``(b, p, k)`` right-hand sides."""
    vec = rhs.ndim == 2
    y = torch.linalg.solve_triangular(L, rhs.unsqueeze(-1) if vec else rhs, upper=False)
    x = torch.linalg.solve_triangular(L.mT, y, upper=True)
    return x.squeeze(-1) if vec else x


def _unit_solve(L, drop):
    r""":math:`Y = L^{-1}E` for the unit columns :math:`E` of the ``drop`` coordinates.

    Returns ``(pos, ok, Y)``: the ``(b, k)`` dropped positions (padded to the longest row),
    which of them are real, and the ``(b, p, k)`` solves (zero columns for the padding).
    """
    counts = drop.sum(-1)
    k = int(counts.max()) if drop.numel() else 0
    pos = torch.argsort((~drop).to(torch.int8), dim=-1, stable=True)[:, :k]  # (b, k)
    ok = torch.arange(k).unsqueeze(0) < counts.unsqueeze(-1)
    E = (torch.arange(drop.shape[1]).view(1, -1, 1) == pos.unsqueeze(1)) & ok.unsqueeze(1)
    if k == 0:
        return pos, ok, E.to(L.dtype)
    return pos, ok, torch.linalg.solve_triangular(L, E.to(L.dtype), upper=False)


def _drop_from_solution(L, v, drop, pos, ok, Y):
    r"""Minimiser of the same quadratic with the ``drop`` coordinates fixed at 0.

    ``v = G^{-1} r`` with ``G = L L^T``; with :math:`E` the unit columns of the dropped
    coordinates and ``(pos, ok, Y)`` from :func:`_unit_solve`, the constrained minimiser is
    :math:`v - G^{-1}E\,(E^\top G^{-1}E)^{-1} E^\top v = v - L^{-\top} Y (Y^\top Y)^{-1}
    E^\top v` (a Schur-complement correction reusing the factor instead of refactorising:
    one triangular solve with the dropped columns, and one with a vector).
    """
    okk = ok.unsqueeze(-1) & ok.unsqueeze(-2)
    K = torch.where(okk, Y.mT @ Y, torch.diag_embed((~ok).to(v.dtype)))  # E^T G^{-1} E
    mu = torch.linalg.solve(K, torch.where(ok, v.gather(1, pos), 0.0))
    corr = torch.linalg.solve_triangular(L.mT, Y @ mu.unsqueeze(-1), upper=True).squeeze(-1)
    return torch.where(drop, 0.0, v - corr)


def _sparse_gram_product(w: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """``w @ G`` exploiting the sparsity of the codes (cost ``nnz * c`` instead of ``b * c^2``)."""
    return torch.sparse.mm(w.to_sparse(), G)


def _kkt_from_correlation(g, w, lam, nonneg):
    on = w != 0
    v_off = torch.relu(g - lam) if nonneg else torch.relu(g.abs() - lam)
    return torch.where(on, (g - lam * torch.sign(w)).abs(), v_off).amax(-1)


def _feature_sign_round(Ge, c, zz, w, g, lam, nonneg, single, n_cross=8):
    r"""One batched feature-sign step (Lee et al., 2007) with many atoms entering at once.

    With :math:`g = 2(c - Gw)` (:math:`c = A^\top z`, :math:`G = A^\top A`, ``Ge`` its
    extension by :func:`_extended_gram`): the support :math:`S` is the current non-zeros plus
    the entering atoms :math:`|g_j| > \lambda` (for rows flagged ``single`` only the most
    violating one, whose sign is then right: the classic, always-progressing step), with signs
    from :math:`w` or, for entering atoms, from :math:`g`. The exact minimiser :math:`v` of
    the sign-fixed quadratic :math:`\|z - A_S v\|^2 + \lambda s^\top v` is computed by
    Cholesky; entering atoms whose :math:`v_j` has the wrong sign are left out and :math:`v`
    is recomputed with the same factor (:func:`_drop_from_solution`, unless :math:`G_{SS}`
    was singular); those still of the wrong sign stay at 0. Candidates: :math:`v`, the first
    ``n_cross`` zero crossings on the segment :math:`[w, v]`, and the refit of :math:`v`
    without every atom whose sign disagrees with :math:`s` (same factor; coordinates still
    disagreeing are then set to 0), which drops many atoms at once and usually lands on the
    minimiser when the support was nearly right. The objective is evaluated exactly at each
    (its smooth part is a quadratic in the step along the segment) and the best is kept if it
    is not worse than ``w``, so the objective never increases. Everything is computed in the
    dtype of ``Ge`` (float32 for a cheap first round); returns the new codes in the dtype of
    ``w``.
    """
    w_in, dt = w, Ge.dtype
    c, zz, w, g, lam = (x.to(dt) for x in (c, zz, w, g, lam))
    n = w.shape[1]
    lam_col = lam.unsqueeze(-1)
    viol = (g if nonneg else g.abs()) - lam_col
    enter = (w == 0) & (viol > 0)
    if bool(single.any()):
        top = torch.where(enter, viol, -math.inf).argmax(-1, keepdim=True)
        only_top = torch.zeros_like(enter).scatter(1, top, True)
        enter = torch.where(single.unsqueeze(-1), enter & only_top, enter)
    idx, valid = _pad_supports((w != 0) | enter)
    real = idx.clamp_max(n - 1)
    wS = torch.where(valid, w.gather(1, real), 0.0)
    cS = torch.where(valid, c.gather(1, real), 0.0)
    entering = (wS == 0) & valid
    if nonneg:
        sS = valid.to(w.dtype)
    else:
        sS = torch.where(entering, torch.sign(g.gather(1, real)), torch.sign(wS))
        sS = torch.where(valid, sS, 0.0)
    # identity on the padding; NumPy's fancy indexing is about twice as fast as torch's
    idx_np = idx.numpy()
    Gs = torch.from_numpy(Ge.numpy()[idx_np[:, :, None], idx_np[:, None, :]])
    L, ridged = _cholesky(Gs)
    rhs = cS - 0.5 * lam_col * sS
    v_full = _chol_solve(L, rhs)
    vS = v_full.clone()
    wrong = entering & (torch.sign(vS) != sS)
    # the Schur corrections below run on every row of the batch (rows without a dropped atom
    # get zero corrections): copying the factors of a subset costs more than the spare solves
    first = None
    if bool(wrong.any()):  # the minimiser without the wrong-sign entering atoms
        fix = wrong & ~ridged.unsqueeze(-1)
        if bool(fix.any()):
            first = (fix, *_unit_solve(L, fix))
            vS = _drop_from_solution(L, vS, *first)
        # a singular block (ridged) makes that correction inaccurate: refactorise without them
        rows = wrong.any(-1) & ridged
        if bool(rows.any()):
            keep = valid[rows] & ~wrong[rows]
            M = Gs[rows] * (keep.unsqueeze(-1) & keep.unsqueeze(-2))
            M.diagonal(dim1=-2, dim2=-1).add_((~keep).to(M.dtype))
            vS[rows] = _chol_solve(_cholesky(M)[0], torch.where(keep, rhs[rows], 0.0))
        vS = torch.where(entering & (torch.sign(vS) != sS), 0.0, vS)
    # F(w + t d) = f0 + t f1 + t^2 f2 + lam |w + t d|_1 on the segment to v
    dS = vS - wS
    # refit with every atom whose sign disagrees with s dropped (same factor), then project
    drop = valid & (torch.sign(vS) != sS)
    proj = vS
    fix = drop & ~ridged.unsqueeze(-1)
    if bool(fix.any()):
        # the wrong-sign entering atoms are among them: reuse their solves, add the others
        pos, ok, Y = _unit_solve(L, fix if first is None else fix & ~first[0])
        if first is not None:
            pos, ok, Y = (
                torch.cat([a, b], -1) for a, b in zip(first[1:], (pos, ok, Y), strict=True)
            )
        proj = _drop_from_solution(L, v_full, fix, pos, ok, Y)
        proj = torch.where(ridged.unsqueeze(-1), vS, proj)
    proj = torch.where(torch.sign(proj) == sS, proj, 0.0)
    Gw, Gd, Gp = (Gs @ torch.stack([wS, dS, proj], dim=-1)).unbind(-1)  # one pass over Gs
    f0 = zz - 2 * (cS * wS).sum(-1) + (wS * Gw).sum(-1)
    f1 = 2 * (dS * (Gw - cS)).sum(-1)
    f2 = (dS * Gd).sum(-1)
    t_cross = torch.where(dS != 0, -wS / dS, math.inf)
    t_cross = torch.where((t_cross > 0) & (t_cross < 1), t_cross, math.inf)
    first = t_cross.topk(min(n_cross, t_cross.shape[1]), dim=1, largest=False).values
    t = torch.cat([first, torch.ones_like(first[:, :1])], dim=1)  # (b, k + 1)
    t = torch.where(torch.isfinite(t), t, 1.0)
    pts = wS.unsqueeze(1) + t.unsqueeze(-1) * dS.unsqueeze(1)  # (b, k + 1, p)
    # snap the crossing coordinate of each candidate to an exact zero
    pts = torch.where(t_cross.unsqueeze(1) == t.unsqueeze(-1), 0.0, pts)
    if nonneg:
        pts = pts.clamp_min(0.0)
    F = f0.unsqueeze(1) + t * f1.unsqueeze(1) + t * t * f2.unsqueeze(1)
    F = F + lam_col * pts.abs().sum(-1)
    F_proj = zz - 2 * (cS * proj).sum(-1) + (proj * Gp).sum(-1)
    F = torch.cat([F, (F_proj + lam * proj.abs().sum(-1)).unsqueeze(1)], dim=1)
    pts = torch.cat([pts, proj.unsqueeze(1)], dim=1)
    best = F.argmin(-1)
    F_best = F.gather(1, best.unsqueeze(1)).squeeze(1)
    F_now = f0 + lam * wS.abs().sum(-1)
    new_S = pts[torch.arange(pts.shape[0]), best]
    # padding positions scatter their zeros into the spare columns n.. 2n - 1
    new_w = w.new_zeros(w.shape[0], 2 * n).scatter(1, idx, new_S)[:, :n]
    # near the minimiser the objective changes below its rounding: accept ties within it
    slack = 64 * torch.finfo(F_now.dtype).eps * F_now.abs()
    return torch.where((F_best <= F_now + slack).unsqueeze(-1), new_w.to(w_in.dtype), w_in)


def _fista_warm_start(zc, A32, M32, lam, step, n_iter, nonneg):
    r"""``n_iter`` FISTA iterations in float32 from zero, the warm start of the active set.

    The iterates of :func:`deepunfold.solvers.proximal_gradient.fista` (same extrapolation,
    :class:`~deepunfold.solvers.proximal_gradient.Momentum`; the same up to float32
    rounding) on the half-scale problem with :math:`\mu = \lambda/2`, without its per-iteration
    convergence test, and the
    gradient step as one product with ``M32`` :math:`= I - \eta A^\top A` through NumPy, whose
    float32 GEMM (OpenBLAS) is about 12% faster than torch's here: 15% less time in all.
    """
    base = step * (zc.to(torch.float32) @ A32)  # eta A^T z
    thr = step * lam / 2.0
    w = torch.zeros_like(base)
    y, v, momentum = w, torch.empty_like(base), Momentum()
    for k in range(n_iter):
        if k == 0:  # y = 0
            v.copy_(base)
        else:
            np.matmul(y.numpy(), M32.numpy(), out=v.numpy())
            v.add_(base)
        w_new = torch.relu(v - thr) if nonneg else torch.nn.functional.softshrink(v, thr)
        y, w = momentum(w_new, w), w_new
    return w


def _size_groups(size: torch.Tensor, most: int, budget: int = 3_000_000):
    """Signals in order of support size, in groups of at most ``most`` and at most ``budget``
    Gram entries (``group * p^2``, 24 MB in float64; at least 8 signals).

    Grouping similar sizes limits the padding (a group pays ``p^3`` per signal for its largest
    ``p``); the budget keeps the batched blocks of large supports in cache: at lambda 0.01 on
    the benchmark instance (``p`` about 370) that is 20% faster than groups of 64.
    """
    order = torch.argsort(size)
    sizes = size[order].tolist()
    groups, i = [], 0
    while i < len(sizes):
        p = sizes[min(i + most, len(sizes)) - 1]
        n = max(8, min(most, budget // max(p * p, 1)))
        groups.append(order[i : i + n])
        i += n
    return groups


def _entry_lambda(g, w, m, lam, nonneg, below):
    r"""The lambda below ``below`` at which ``m`` more atoms violate the KKT conditions.

    At a point :math:`w` with correlation :math:`g`, lowering lambda to the :math:`(m+v+1)`-th
    largest off-support :math:`|g_j|` (:math:`g_j` for the non-negative variant) makes ``m``
    atoms enter besides the ``v`` already above ``below`` (the current stage's lambda; an
    inexact stage solution may leave some). Per row, at least ``lam`` (the target) and below
    ``below``, so every stage lowers lambda.
    """
    score = torch.where(w == 0, g if nonneg else g.abs(), -math.inf)
    pos = m + (score > below.unsqueeze(-1)).sum(-1)
    k = min(int(pos.max()) + 1, score.shape[1])
    top = score.topk(k, dim=1).values
    nxt = top.gather(1, pos.clamp_max(k - 1).unsqueeze(-1)).squeeze(-1)
    return torch.minimum(nxt, below * (1 - 1e-9)).clamp_min(lam)


def lasso_active_set(
    z: torch.Tensor,
    A: torch.Tensor,
    lam: float,
    *,
    nonneg: bool = False,
    tol: float = 1e-9,
    warm_iter: int = 45,
    bulk_rounds: int = 8,
    direct_frac: float = 0.6,
    enter_min: int = 64,
    enter_first: int = 150,
    stage_tol: float = 0.3,
    stage_rounds: int = 10,
    saturated_room: int = 8,
    max_rounds: int = 500,
    chunk_size: int = 500,
    sub_batch: int = 64,
    progress=None,
) -> tuple[torch.Tensor, dict]:
    r"""Fast exact Lasso codes for many signals over ~1,000 atoms (seed scale :math:`F_\lambda`).

    For each chunk of signals:

    1. ``warm_iter`` FISTA iterations in float32
    (:func:`deepunfold.solvers.proximal_gradient.fista`,
       step :math:`1/L`) from zero give an approximate support and signs;
    2. batched feature-sign rounds (:func:`_feature_sign_round`; the first in float32, the
       others in float64): on the support plus the KKT violators, the sign-fixed quadratic is
       minimised exactly (batched Cholesky of :math:`G_{SS}`, :math:`G = A^\top A`) and the
       best of the points on the segment to it and its sign projection is kept, so the
       objective never increases; a signal whose round made no progress continues with one
       entering atom per round (the classic feature-sign step, which always progresses);
    3. a signal leaves the batch once its KKT violation (:func:`kkt_violation`) is at most
       ``tol * lam``.

    Supports near the rank :math:`r` of :math:`A` (small lambda: about 400 non-zeros of 512
    dimensions at lambda 0.01 on the benchmark instance) defeat step 2 from the warm start:
    FISTA's early iterates have more than :math:`r` non-zeros, the sign-fixed quadratic on
    such a support is unbounded along the null space of :math:`A_S`, and each round then only
    reaches the first zero crossing, removing one atom. Signals whose warm start has more than
    ``direct_frac * r`` non-zeros, or that are not converged after ``bulk_rounds`` rounds,
    therefore take the *continuation* path: they start from zero and solve a decreasing
    sequence of lambdas down to ``lam``, each stage starting from the previous stage's
    solution, where the next lambda lets about ``enter_min`` (``enter_first`` for the first
    stage) or, if larger, as many atoms as the support has, but at most half the room left
    below the rank (at least one), so that support plus entering atoms stays below
    :math:`r` (with about 57% of the entering atoms leaving again on this instance). Stages above
    ``lam`` stop at a KKT violation of ``stage_tol`` times their lambda (only the support
    matters there); a stage that takes ``stage_rounds`` rounds restarts from its starting
    point with half as many entering atoms. Once the room left is at most ``saturated_room``
    atoms, the path goes to ``lam`` directly with one entering atom per round (near the rank
    atoms mostly swap places, and stages of a few atoms would lower lambda by about a
    percent each).

    Where the rounds stop with zero violation the support and signs are those of the
    minimiser, so the codes are exact up to the rounding of the Cholesky solve.

    Args:
        z: ``(batch, d)`` signals.
        A: ``(d, c)`` dictionary.
        lam: lambda (seed scale).
        nonneg: constrain codes to be non-negative.
        tol: KKT tolerance relative to lambda.
        warm_iter: FISTA iterations before the first round.
        bulk_rounds: rounds from the warm start before a signal takes the continuation path.
        direct_frac: warm starts with more non-zeros than this fraction of the rank take the
            continuation path at once.
        enter_min, enter_first: atoms entering per continuation stage (at least; first stage).
        stage_tol: KKT tolerance (relative to the stage's lambda) of the stages above ``lam``.
        stage_rounds: rounds after which a continuation stage restarts with a smaller step.
        saturated_room: room (atoms that may enter) below which continuation goes to ``lam``.
        max_rounds: feature-sign rounds per chunk.
        chunk_size: signals solved together (memory about ``chunk * support^2`` doubles).
        sub_batch: signals per feature-sign call (at most; fewer for large supports, see
            :func:`_size_groups`), grouped by support size (less padding).
        progress: optional callable ``progress(n_done)`` called after each chunk.

    Returns:
        ``(w, info)`` with the ``(batch, c)`` float64 codes and counters: ``rounds``
        (feature-sign rounds, summed over chunks), ``fista_iter`` (warm-start iterations),
        ``stalls`` (rounds without progress), ``continuation`` (signals that took the
        continuation path), ``stages`` (continuation stages completed), ``restarts``
        (stages restarted with a smaller step) and ``unconverged`` (signals left above the
        tolerance after ``max_rounds``).
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    # part of the work runs in NumPy's BLAS/LAPACK: hold it to torch's thread count too
    with threadpool_limits(torch.get_num_threads(), user_api="blas"):
        return _lasso_active_set(
            z,
            A,
            lam,
            nonneg=nonneg,
            chunk_size=chunk_size,
            progress=progress,
            opts=dict(
                tol=tol,
                warm_iter=warm_iter,
                bulk_rounds=bulk_rounds,
                direct_frac=direct_frac,
                enter_min=enter_min,
                enter_first=enter_first,
                stage_tol=stage_tol,
                stage_rounds=stage_rounds,
                saturated_room=saturated_room,
                max_rounds=max_rounds,
                sub_batch=sub_batch,
            ),
        )


def _lasso_active_set(z, A, lam, *, nonneg, chunk_size, progress, opts):
    """:func:`lasso_active_set` under its thread limit: shared setup, then chunk by chunk."""
    z = z.to(torch.float64)
    A = A.to(torch.float64)
    G = A.T @ A
    Ge = _extended_gram(G)
    Ge32 = Ge.to(torch.float32)
    A32 = A.to(torch.float32)
    step = 1.0 / lipschitz_constant(A)
    M32 = (torch.eye(G.shape[0], dtype=G.dtype) - step * G).to(torch.float32)
    ev = torch.linalg.eigvalsh(A @ A.T if A.shape[0] <= A.shape[1] else G)
    rank = int((ev > 1e-10 * ev[-1].clamp_min(1e-300)).sum())
    out = torch.zeros(z.shape[0], A.shape[1], dtype=torch.float64)
    info = {
        "rounds": 0,
        "fista_iter": 0,
        "stalls": 0,
        "continuation": 0,
        "stages": 0,
        "restarts": 0,
        "unconverged": 0,
    }
    for start in range(0, z.shape[0], chunk_size):
        zc = z[start : start + chunk_size]
        out[start : start + chunk_size] = _active_set_chunk(
            zc, A, lam, nonneg, G, Ge, Ge32, A32, M32, step, rank, info, **opts
        )
        if progress is not None:
            progress(zc.shape[0])
    return out, info


def _active_set_chunk(
    zc,
    A,
    lam,
    nonneg,
    G,
    Ge,
    Ge32,
    A32,
    M32,
    step,
    rank,
    info,
    *,
    tol,
    warm_iter,
    bulk_rounds,
    direct_frac,
    enter_min,
    enter_first,
    stage_tol,
    stage_rounds,
    saturated_room,
    max_rounds,
    sub_batch,
):
    """:func:`lasso_active_set` on one chunk of signals; returns its codes, adds to ``info``."""
    b = zc.shape[0]
    w = _fista_warm_start(zc, A32, M32, lam, step, warm_iter, nonneg).to(torch.float64)
    info["fista_iter"] += warm_iter
    c = zc @ A
    zz = zc.pow(2).sum(-1)
    # per signal: the lambda of its current stage, the stage's starting point and step
    lam_cur = torch.full_like(zz, lam)
    anchor = torch.zeros_like(w)
    n_enter = torch.full((b,), enter_first, dtype=torch.long)
    cont = torch.zeros(b, dtype=torch.bool)
    stage_r = torch.zeros(b, dtype=torch.long)
    single = torch.zeros(b, dtype=torch.bool)

    def start_path(ids):  # continuation from zero for the signals ids
        if ids.numel() == 0:
            return
        cont[ids] = True
        w[ids] = 0.0
        anchor[ids] = 0.0
        n_enter[ids] = min(enter_first, max(1, rank // 2))
        lam_cur[ids] = _entry_lambda(
            2.0 * c[ids], w[ids], n_enter[ids], lam, nonneg, torch.full_like(zz[ids], math.inf)
        )
        stage_r[ids] = 0
        single[ids] = False
        info["continuation"] += int(ids.numel())

    start_path(torch.nonzero((w != 0).sum(-1) > direct_frac * rank).squeeze(-1))
    todo = torch.arange(b)
    for r in range(max_rounds):
        g = 2.0 * (c[todo] - _sparse_gram_product(w[todo], G))
        lc = lam_cur[todo]
        viol = _kkt_from_correlation(g, w[todo], lc.unsqueeze(-1), nonneg)
        final = lc == lam
        done = final & (viol <= tol * lc)
        todo, g, viol, final = todo[~done], g[~done], viol[~done], final[~done]
        if todo.numel() == 0:
            break
        # a finished stage above lam starts the next one from its solution
        staged = ~final & (viol <= stage_tol * lam_cur[todo])
        if bool(staged.any()):
            ids = todo[staged]
            anchor[ids] = w[ids]
            s = (w[ids] != 0).sum(-1)
            room = ((rank - s) // 2).clamp_min(1)
            n_enter[ids] = torch.minimum(s.clamp_min(enter_min), room)
            lam_cur[ids] = _entry_lambda(g[staged], w[ids], n_enter[ids], lam, nonneg, lam_cur[ids])
            # near the rank, stages of a few atoms lower lambda by a percent or so each: go to
            # lam at once, one entering atom per round (atoms now mostly swap places)
            full = room <= saturated_room
            lam_cur[ids[full]] = lam
            n_enter[ids[full]] = 1
            stage_r[ids] = 0
            single[ids] = full
            info["stages"] += int(ids.numel())
        slow = stage_r[todo] >= torch.where(cont[todo], stage_rounds, bulk_rounds)
        # the warm start did not lead there: the continuation path from zero
        fresh = slow & ~cont[todo]
        if bool(fresh.any()):
            start_path(todo[fresh])
            g[fresh] = 2.0 * c[todo[fresh]]
        # a stage that takes too long: back to its start with half as many entering atoms
        back = slow & cont[todo] & ~fresh & (n_enter[todo] > 1)
        if bool(back.any()):
            ids = todo[back]
            w[ids] = anchor[ids]
            g[back] = 2.0 * (c[ids] - _sparse_gram_product(anchor[ids], G))
            n_enter[ids] = n_enter[ids] // 2
            lam_cur[ids] = _entry_lambda(
                g[back], w[ids], n_enter[ids], lam, nonneg, torch.full_like(zz[ids], math.inf)
            )
            stage_r[ids] = 0
            single[ids] = False
            info["restarts"] += int(ids.numel())
        info["rounds"] += 1
        w_old = w[todo]
        lc = lam_cur[todo].unsqueeze(-1)
        # group signals of similar support size: padding to the largest costs p^3 each
        size = (w_old != 0).sum(-1) + (((g if nonneg else g.abs()) > lc) & (w_old == 0)).sum(-1)
        for part in _size_groups(size, sub_batch):
            ids = todo[part]
            w[ids] = _feature_sign_round(
                Ge32 if r == 0 else Ge,
                c[ids],
                zz[ids],
                w_old[part],
                g[part],
                lam_cur[ids],
                nonneg,
                single[ids],
            )
        stage_r[todo] += 1
        stuck = (w[todo] == w_old).all(-1)
        single[todo[stuck]] = True
        info["stalls"] += int(stuck.sum())
    else:
        info["unconverged"] += int(todo.numel())
    return w


def sparse_code(
    z: torch.Tensor,
    A: torch.Tensor,
    lam: float,
    *,
    solver: str = "active_set",
    nonneg: bool = False,
    step: float | None = None,
    max_iter: int = 200,
    tol: float = 1e-9,
    chunk_size: int = 1000,
    progress=None,
) -> CodeResult:
    r"""Sparse codes :math:`\arg\min_w \|z - Aw\|^2 + \lambda\|w\|_1` for every row of ``z``.

    Args:
        z: ``(batch, d)`` aligned embeddings.
        A: ``(d, c)`` aligned dictionary (concepts as columns).
        lam: lambda in the seed's scale (no 1/2 on the squared error).
        solver: ``"active_set"`` (exact, fast), ``"fista"`` or ``"ista"``.
        nonneg: non-negative codes (as SpLiCE).
        step: ISTA/FISTA step in the seed's convention (gradient :math:`2A^\top(Aw - z)`);
            ``None`` is :math:`1/L` with :math:`L = 2\|A\|_2^2`. The seed used 0.01.
        max_iter: ISTA/FISTA iterations (the seed ran 200 from zero, tolerance 0).
        tol: ``active_set``: KKT tolerance relative to lambda; ISTA/FISTA: relative-change
            tolerance (0 runs all ``max_iter``).
        chunk_size: signals processed together.
        progress: optional ``progress(n_done)`` callback.

    Returns:
        :class:`CodeResult` with codes and, per signal, objective, KKT violation and duality gap.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; expected one of {SOLVERS}")
    if lam < 0:
        raise ValueError(f"lambda must be non-negative, got {lam}")
    z = z.to(torch.float64)
    A = A.to(torch.float64)
    t0 = time.perf_counter()
    info: dict = {}
    if solver == "active_set":
        w, info = lasso_active_set(
            z, A, lam, nonneg=nonneg, tol=tol, chunk_size=chunk_size, progress=progress
        )
        n_iter = info["fista_iter"] + info["rounds"]
    else:
        run = fista if solver == "fista" else ista
        half_step = None if step is None else 2.0 * step
        parts, n_iter = [], 0
        for start in range(0, z.shape[0], chunk_size):
            res = run(
                z[start : start + chunk_size],
                A,
                lam / 2.0,
                step=half_step,
                max_iter=max_iter,
                tol=tol,
                nonneg=nonneg,
                record_history=False,
            )
            parts.append(res.z)
            n_iter = max(n_iter, res.n_iter)
            info["step_half_scale"] = res.step
            if progress is not None:
                progress(res.z.shape[0])
        w = torch.cat(parts) if parts else torch.zeros(0, A.shape[1], dtype=torch.float64)
    seconds = time.perf_counter() - t0
    # objective, kkt_violation and duality_gap from one residual and one correlation
    r = z - w @ A.T
    ar = r @ A
    return CodeResult(
        w=w,
        objective=r.pow(2).sum(-1) + lam * w.abs().sum(-1),
        kkt=_kkt_from_correlation(2.0 * ar, w, lam, nonneg),
        gap=_gap_from_residual(z, r, ar, w, lam, nonneg),
        n_iter=n_iter,
        seconds=seconds,
        info=info,
    )


def codes_to_csr(w: torch.Tensor | np.ndarray, dtype=np.float32):
    """The codes as a SciPy CSR matrix (values in ``dtype``, int32 indices and row pointers)."""
    import scipy.sparse as sp

    w = np.asarray(w.detach().cpu().numpy() if torch.is_tensor(w) else w)
    return sp.csr_matrix(w.astype(dtype))


def csr_nbytes(m) -> dict[str, int]:
    """Bytes of a CSR matrix: values, column indices and row pointers, and their total."""
    out = {
        "values": int(m.data.nbytes),
        "indices": int(m.indices.nbytes),
        "indptr": int(m.indptr.nbytes),
    }
    out["total"] = sum(out.values())
    return out


def reconstruct(w: torch.Tensor, A: torch.Tensor, mean: torch.Tensor | None) -> torch.Tensor:
    r"""Reconstructed embeddings :math:`\hat z = A w + \mu` (rows), ``mean=None`` adds nothing."""
    z_hat = w.to(A.dtype) @ A.T
    return z_hat if mean is None else z_hat + mean.to(A.dtype)


def zero_shot_predict(emb: torch.Tensor, class_emb: torch.Tensor) -> torch.Tensor:
    r"""Zero-shot labels :math:`\arg\max_k \cos(e_i, t_k)`; rows of zero norm get class 0."""
    e = emb / torch.linalg.vector_norm(emb, dim=-1, keepdim=True).clamp_min(1e-30)
    t = class_emb.to(e.dtype)
    t = t / torch.linalg.vector_norm(t, dim=-1, keepdim=True)
    return (e @ t.T).argmax(-1)


def concept_counts(w: torch.Tensor, names) -> list[tuple[str, int]]:
    """Number of signals in which each concept is active, most active first (ties by name)."""
    counts = (torch.as_tensor(w) != 0).sum(0).tolist()
    return sorted(zip(names, counts, strict=True), key=lambda kv: (-kv[1], kv[0]))


def synthetic_concept_instance(
    n_signals: int = 10_000,
    dim: int = 512,
    n_atoms: int = 1003,
    *,
    n_clusters: int = 60,
    cluster_spread: float = 0.6,
    atom_noise: float = 1.0,
    active: int = 8,
    signal_noise: float = 2.0,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A synthetic stand-in for aligned CLIP image embeddings and a text-concept dictionary.

    Text-like atoms share one large common direction (CLIP text embeddings of "a photo of a
    {word}" are strongly correlated), belong to ``n_clusters`` semantic clusters, and carry an
    individual part; all parts live in a random basis with a decaying spectrum
    :math:`\propto (1 + k/20)^{-1/2}`, as embeddings do. Atoms are normalised, then aligned as
    in seed 001 (centred by their mean, renormalised). Signals are a sparse non-negative mix of
    ``active`` atoms plus a dense part of relative size ``signal_noise`` from the same
    spectrum, then centred and renormalised. With the defaults the Lasso at lambda = 0.05 (seed
    scale) has about 200 non-zeros per signal, like seed 001's CIFAR-10 codes (215).

    Returns:
        ``(z, A)``: ``(n_signals, dim)`` float64 signals and the ``(dim, n_atoms)`` dictionary.
    """
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    spec = 1.0 / np.sqrt(1.0 + np.arange(dim) / 20.0)
    spec /= np.sqrt((spec**2).mean())
    common = Q[:, 0] * np.sqrt(dim)
    centres = (rng.standard_normal((n_clusters, dim)) * spec) @ Q.T
    labels = rng.integers(0, n_clusters, n_atoms)
    own = (rng.standard_normal((n_atoms, dim)) * spec) @ Q.T
    T = common + cluster_spread * centres[labels] + atom_noise * own
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    Ac = T - T.mean(0)
    Ac /= np.linalg.norm(Ac, axis=1, keepdims=True)
    W = np.zeros((n_signals, n_atoms))
    rows = np.repeat(np.arange(n_signals), active)
    cols = np.argsort(rng.random((n_signals, n_atoms)), axis=1)[:, :active].ravel()
    W[rows, cols] = rng.exponential(1.0, n_signals * active)
    X = W @ Ac
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    E = (rng.standard_normal((n_signals, dim)) * spec) @ Q.T
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    X = X + signal_noise * E
    X -= X.mean(0)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return torch.from_numpy(X), torch.from_numpy(np.ascontiguousarray(Ac.T))


CODES_META_KEY = b"deepunfold.sparse_codes"
CODES_FORMAT = "deepunfold.sparse_codes/1"


def write_codes(path, w, ids, labels, meta: dict) -> None:
    """Write codes sparsely to Parquet, atomically: per row ``id``, ``label``, the column
    ``indices`` (list of int32) and ``values`` (list of float32) of its non-zeros, with
    ``meta`` (and ``n_concepts``, ``n_rows``) in the schema metadata."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from deepunfold.pipeline.io import atomic_path

    csr = codes_to_csr(w)
    offsets = pa.array(csr.indptr.astype(np.int32), pa.int32())
    meta = dict(meta, format=CODES_FORMAT, n_concepts=int(csr.shape[1]), n_rows=int(csr.shape[0]))
    table = pa.table(
        {
            "id": pa.array(np.asarray(ids, np.int64)),
            "label": pa.array(np.asarray(labels, np.int64)),
            "indices": pa.ListArray.from_arrays(offsets, pa.array(csr.indices.astype(np.int32))),
            "values": pa.ListArray.from_arrays(offsets, pa.array(csr.data.astype(np.float32))),
        }
    ).replace_schema_metadata({CODES_META_KEY: json.dumps(meta, sort_keys=True).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_codes(path):
    """Read codes written by :func:`write_codes`: ``(csr float32, ids, labels, meta)``.

    Raises ``ValueError`` naming the file if it is unreadable or not a code file.
    """
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq
    import scipy.sparse as sp

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f"code file {path} is unreadable (truncated?): {err}") from err
    raw = (table.schema.metadata or {}).get(CODES_META_KEY)
    if raw is None or json.loads(raw).get("format") != CODES_FORMAT:
        raise ValueError(f"{path} is not a sparse-code file of this pipeline")
    meta = json.loads(raw)
    ind = table.column("indices").combine_chunks()
    val = table.column("values").combine_chunks()
    indptr = ind.offsets.to_numpy()
    csr = sp.csr_matrix(
        (val.values.to_numpy(), ind.values.to_numpy(), indptr - indptr[0]),
        shape=(table.num_rows, meta["n_concepts"]),
    )
    return csr, table.column("id").to_numpy(), table.column("label").to_numpy(), meta
