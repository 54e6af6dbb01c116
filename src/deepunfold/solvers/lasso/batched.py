r"""The batched active set (torch, any device): feature-sign rounds over batches of signals.

The implementation of :func:`~deepunfold.solvers.lasso.lasso_active_set` off the CPU (and
with ``method="batched"``). For signals :math:`x` (rows), the dictionary :math:`A`, its Gram
matrix :math:`G = A^\top A` and the correlations :math:`c = A^\top x`, it minimises the
full-scale Lasso :math:`\|x - Az\|^2 + \lambda\|z\|_1` over the codes :math:`z`, many signals
at once:

1. a warm start: a few float32 FISTA iterations (:func:`_fista_warm_start`) where many atoms
   are expected to be active, zero where few are (:func:`_expected_support`);
2. batched *feature-sign* rounds (:func:`_feature_sign_round`: exact Cholesky solves on the
   support plus the KKT violators, sign-fixed, the objective never increases), with a
   *continuation* path (a decreasing sequence of lambdas from zero) for signals whose
   support comes near the rank of :math:`A`. The per-signal state of these rounds is one
   :class:`_Signals` object, and each kind of step is a function of its own
   (:func:`_start_continuation`, :func:`_next_stages`, :func:`_restart_slow`,
   :func:`_feature_sign_pass`); :func:`solve_chunk` is the loop that calls them;
3. a signal the rounds give up on goes to the LARS homotopy (:func:`_homotopy_rows`, the
   compiled kernel on the CPU), polished by a few float64 rounds (:func:`_polish`).

The batched linear algebra is here too: padded supports (:func:`_pad_supports`) gathered from
the Gram matrix extended by an identity block (:func:`.extended_gram`), Cholesky factors
with a ridge rescue (:func:`_cholesky`), and the Schur-complement correction that drops
coordinates without refactorising (:func:`_unit_solve`, :func:`_drop_from_solution`).
Symmetric positive definite systems are solved by Cholesky, never by torch's batched LU:
threaded inside oneMKL it returned invalid pivots on nearly singular batches (module
docstring of :mod:`deepunfold.solvers.lasso`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from deepunfold.ops.prox import soft_threshold
from deepunfold.solvers.lasso.certificates import kkt_from_correlation
from deepunfold.solvers.lasso.problem import Problem
from deepunfold.solvers.proximal_gradient import Momentum

__all__ = ["solve_chunk", "sparse_gram_product"]


def _pad_supports(mask: torch.Tensor):
    """Indices of the True entries of each row, padded to the longest row.

    Returns ``(idx, valid)``: ``(batch, p)`` long indices and the ``(batch, p)`` bool mask of
    real entries. Padding position ``j`` points at column ``c + j`` (``c = mask.shape[1]``), a
    column of the identity block of the extended Gram matrix (:func:`.extended_gram`), so a
    gathered Gram block is the identity on its padding and needs no masking.
    """
    n = mask.shape[1]
    counts = mask.sum(-1)
    p = int(counts.max()) if mask.numel() else 0
    pos = torch.arange(p, device=mask.device).unsqueeze(0)
    valid = pos < counts.unsqueeze(-1)
    # compaction by a running count (faster than a stable sort): the k-th True entry of a row
    # goes to position k, in the original order; False entries go to a spare last column
    slot = torch.where(mask, mask.cumsum(-1) - 1, p)
    cols = torch.arange(n, device=mask.device).expand_as(mask)
    idx = (n + torch.arange(p + 1, device=mask.device)).repeat(mask.shape[0], 1)
    idx.scatter_(1, slot, cols)
    return idx[:, :p], valid


def _cholesky(M: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Batched lower Cholesky factors of symmetric positive (semi)definite ``M``.

    In float64 NumPy's batched LAPACK call is about 1.6x as fast as torch's here, in float32
    torch's about 1.3x as fast as NumPy's (and faster than either in float64). If a
    factorisation fails, a tiny ridge, a little above rounding and grown until it succeeds,
    rescues the rare singular :math:`G_{SS}` (a support larger than the rank). Returns ``(L,
    ridged)``, the factors and which matrices needed the ridge or are numerically singular.
    """
    L = None
    if M.dtype == torch.float64 and M.device.type == "cpu":
        try:
            L = torch.from_numpy(np.linalg.cholesky(M.numpy()))
            bad = torch.zeros(M.shape[0], dtype=torch.bool)
        except np.linalg.LinAlgError:  # one failure fails the batch: find which
            pass
    if L is None:
        L, info = torch.linalg.cholesky_ex(M)
        bad = info != 0
    if M.shape[-1] == 0:
        return L, bad
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
    pos, ok = _pad_supports(drop)  # (b, k)
    k = pos.shape[1]
    pos = torch.where(ok, pos, 0)
    cols = torch.arange(drop.shape[1], device=L.device).view(1, -1, 1)
    E = (cols == pos.unsqueeze(1)) & ok.unsqueeze(1)
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
    # K is symmetric positive definite: Cholesky, not the batched LU of torch.linalg.solve,
    # whose threaded oneMKL path returned invalid pivots (DLASWP "parameter 6") here
    mu = _chol_solve(_cholesky(K)[0], torch.where(ok, v.gather(1, pos), 0.0))
    corr = torch.linalg.solve_triangular(L.mT, Y @ mu.unsqueeze(-1), upper=True).squeeze(-1)
    return torch.where(drop, 0.0, v - corr)


def sparse_gram_product(z: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """``z @ G`` exploiting the sparsity of the codes (cost ``nnz * c`` instead of ``b * c^2``)."""
    return torch.sparse.mm(z.to_sparse(), G)


def _feature_sign_round(Ge, c, xx, z, g, lam, nonneg, single, cap=None, n_cross=8):
    r"""One batched feature-sign step (Lee et al., 2007) with many atoms entering at once.

    With :math:`g = 2(c - Gz)` (:math:`c = A^\top x`, :math:`G = A^\top A`, ``Ge`` its
    extension by :func:`.extended_gram`): the support :math:`S` is the current non-zeros plus
    the entering atoms :math:`|g_j| > \lambda` (for rows flagged ``single`` only the most
    violating one, whose sign is then right: the classic, always-progressing step), with signs
    from :math:`z` or, for entering atoms, from :math:`g`. The exact minimiser :math:`v` of
    the sign-fixed quadratic :math:`\|x - A_S v\|^2 + \lambda s^\top v` is computed by
    Cholesky; entering atoms whose :math:`v_j` has the wrong sign are left out and :math:`v`
    is recomputed with the same factor (:func:`_drop_from_solution`, unless :math:`G_{SS}`
    was singular); those still of the wrong sign stay at 0. Candidates: :math:`v`, the first
    ``n_cross`` zero crossings on the segment :math:`[z, v]`, and the refit of :math:`v`
    without every atom whose sign disagrees with :math:`s` (same factor; coordinates still
    disagreeing are then set to 0), which drops many atoms at once and usually lands on the
    minimiser when the support was nearly right. The objective is evaluated exactly at each
    (its smooth part is a quadratic in the step along the segment) and the best is kept if it
    is not worse than ``z``, so the objective never increases. Everything is computed in the
    dtype of ``Ge`` (float32 for a cheap first round); returns the new codes in the dtype of
    ``z``.
    """
    z_in, dt = z, Ge.dtype
    c, xx, z, g, lam = (x.to(dt) for x in (c, xx, z, g, lam))
    n = z.shape[1]
    lam_col = lam.unsqueeze(-1)
    viol = (g if nonneg else g.abs()) - lam_col
    enter = (z == 0) & (viol > 0)
    if cap is not None:  # at most cap[i] entering atoms, the most violating ones
        cap = torch.where(single, 1, cap)
        k = min(int(cap.max()), n)
        if k < int(enter.sum(-1).max()):
            vals = torch.where(enter, viol, -math.inf).topk(k, dim=-1).values
            kth = vals.gather(1, (cap.clamp_max(k) - 1).unsqueeze(-1))
            enter = enter & (viol >= kth)
    elif bool(single.any()):
        top = torch.where(enter, viol, -math.inf).argmax(-1, keepdim=True)
        only_top = torch.zeros_like(enter).scatter(1, top, True)
        enter = torch.where(single.unsqueeze(-1), enter & only_top, enter)
    idx, valid = _pad_supports((z != 0) | enter)
    real = idx.clamp_max(n - 1)
    zS = torch.where(valid, z.gather(1, real), 0.0)
    cS = torch.where(valid, c.gather(1, real), 0.0)
    entering = (zS == 0) & valid
    if nonneg:
        sS = valid.to(z.dtype)
    else:
        sS = torch.where(entering, torch.sign(g.gather(1, real)), torch.sign(zS))
        sS = torch.where(valid, sS, 0.0)
    # identity on the padding; NumPy's fancy indexing is about twice as fast as torch's
    if Ge.device.type == "cpu":
        idx_np = idx.numpy()
        Gs = torch.from_numpy(Ge.numpy()[idx_np[:, :, None], idx_np[:, None, :]])
    else:
        Gs = Ge[idx[:, :, None], idx[:, None, :]]
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
    # F(z + t d) = f0 + t f1 + t^2 f2 + lam |z + t d|_1 on the segment to v
    dS = vS - zS
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
    Gz, Gd, Gp = (Gs @ torch.stack([zS, dS, proj], dim=-1)).unbind(-1)  # one pass over Gs
    f0 = xx - 2 * (cS * zS).sum(-1) + (zS * Gz).sum(-1)
    f1 = 2 * (dS * (Gz - cS)).sum(-1)
    f2 = (dS * Gd).sum(-1)
    t_cross = torch.where(dS != 0, -zS / dS, math.inf)
    t_cross = torch.where((t_cross > 0) & (t_cross < 1), t_cross, math.inf)
    first = t_cross.topk(min(n_cross, t_cross.shape[1]), dim=1, largest=False).values
    t = torch.cat([first, torch.ones_like(first[:, :1])], dim=1)  # (b, k + 1)
    t = torch.where(torch.isfinite(t), t, 1.0)
    pts = zS.unsqueeze(1) + t.unsqueeze(-1) * dS.unsqueeze(1)  # (b, k + 1, p)
    # snap the crossing coordinate of each candidate to an exact zero
    pts = torch.where(t_cross.unsqueeze(1) == t.unsqueeze(-1), 0.0, pts)
    if nonneg:
        pts = pts.clamp_min(0.0)
    F = f0.unsqueeze(1) + t * f1.unsqueeze(1) + t * t * f2.unsqueeze(1)
    F = F + lam_col * pts.abs().sum(-1)
    F_proj = xx - 2 * (cS * proj).sum(-1) + (proj * Gp).sum(-1)
    F = torch.cat([F, (F_proj + lam * proj.abs().sum(-1)).unsqueeze(1)], dim=1)
    pts = torch.cat([pts, proj.unsqueeze(1)], dim=1)
    best = F.argmin(-1)
    F_best = F.gather(1, best.unsqueeze(1)).squeeze(1)
    F_now = f0 + lam * zS.abs().sum(-1)
    new_S = pts[torch.arange(pts.shape[0], device=pts.device), best]
    # padding positions scatter their zeros into the spare columns n.. 2n - 1
    new_z = z.new_zeros(z.shape[0], 2 * n).scatter(1, idx, new_S)[:, :n]
    # near the minimiser the objective changes below its rounding: accept ties within it
    slack = 64 * torch.finfo(F_now.dtype).eps * F_now.abs()
    return torch.where((F_best <= F_now + slack).unsqueeze(-1), new_z.to(z_in.dtype), z_in)


def _fista_warm_start(xc, A32, M32, lam, step, n_iter, nonneg):
    r"""``n_iter`` FISTA iterations in float32 from zero, the warm start of the active set.

    The iterates of :func:`deepunfold.solvers.proximal_gradient.fista` (same extrapolation,
    :class:`~deepunfold.solvers.proximal_gradient.Momentum`; the same up to float32
    rounding) on the half-scale problem with :math:`\mu = \lambda/2`, without its per-iteration
    convergence test, and the
    gradient step as one product with ``M32`` :math:`= I - \eta A^\top A` through NumPy, whose
    float32 GEMM (OpenBLAS) is about 12% faster than torch's here: 15% less time in all.
    """
    base = step * (xc.to(torch.float32) @ A32)  # eta A^T x
    thr = step * lam / 2.0
    z = torch.zeros_like(base)
    cpu = base.device.type == "cpu"
    y, v, momentum = z, torch.empty_like(base), Momentum()
    for k in range(n_iter):
        if k == 0:  # y = 0
            v.copy_(base)
        else:
            if cpu:
                np.matmul(y.numpy(), M32.numpy(), out=v.numpy())
            else:
                torch.matmul(y, M32, out=v)
            v.add_(base)
        z_new = soft_threshold(v, thr, nonneg=nonneg)
        y, z = momentum(z_new, z), z_new
    return z


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


def _entry_lambda(g, z, m, lam, nonneg, below):
    r"""The lambda below ``below`` at which ``m`` more atoms violate the KKT conditions.

    At a point :math:`z` with correlation :math:`g`, lowering lambda to the :math:`(m+v+1)`-th
    largest off-support :math:`|g_j|` (:math:`g_j` for the non-negative variant) makes ``m``
    atoms enter besides the ``v`` already above ``below`` (the current stage's lambda; an
    inexact stage solution may leave some). Per row, at least ``lam`` (the target) and below
    ``below``, so every stage lowers lambda.
    """
    score = torch.where(z == 0, g if nonneg else g.abs(), -math.inf)
    pos = m + (score > below.unsqueeze(-1)).sum(-1)
    k = min(int(pos.max()) + 1, score.shape[1])
    top = score.topk(k, dim=1).values
    nxt = top.gather(1, pos.clamp_max(k - 1).unsqueeze(-1)).squeeze(-1)
    return torch.minimum(nxt, below * (1 - 1e-9)).clamp_min(lam)


@dataclass
class _Signals:
    """Per-signal state of one chunk of :func:`~deepunfold.solvers.lasso.lasso_active_set`:
    one row per signal.

    Attributes:
        c: :math:`A^\\top x`.
        xx: :math:`\\|x\\|^2`.
        z: the current codes (float64).
        lam_cur: lambda of the signal's current stage (``lam`` once on the target).
        anchor: the current stage's starting point (a stage that takes too long restarts there).
        n_enter: atoms the current continuation stage lets enter.
        cont: on the continuation path (started from zero).
        stage_r: rounds spent in the current stage.
        single: one entering atom per round (the classic feature-sign step).
        stuck: consecutive rounds without any change.
        rough: the codes come from a float32 step (warm start or round); such a code is not
            accepted as converged (it meets the tolerance only by chance): one more round
            in float64 makes it exact.
    """

    c: torch.Tensor
    xx: torch.Tensor
    z: torch.Tensor
    lam_cur: torch.Tensor
    anchor: torch.Tensor
    n_enter: torch.Tensor
    cont: torch.Tensor
    stage_r: torch.Tensor
    single: torch.Tensor
    stuck: torch.Tensor
    rough: torch.Tensor

    @classmethod
    def warm_started(cls, prob: Problem, xc, c, info) -> _Signals:
        """The state after the warm start (FISTA, or zero where supports are expected small);
        warm starts near the rank take the continuation path at once."""
        o = prob.opts
        b = xc.shape[0]
        fista_start = o.warm == "fista" or (
            o.warm == "auto"
            and float(_expected_support(c, prob.lam, prob.nonneg)) > o.zero_start_max
        )
        if fista_start:
            z = _fista_warm_start(
                xc, prob.A32, prob.M32, prob.lam, prob.step, o.warm_iter, prob.nonneg
            )
            z = z.to(torch.float64)
            info["fista_iter"] += o.warm_iter
        else:
            z = torch.zeros_like(c)
        dev = c.device
        st = cls(
            c=c,
            xx=xc.pow(2).sum(-1),
            z=z,
            lam_cur=torch.full((b,), prob.lam, dtype=c.dtype, device=dev),
            anchor=torch.zeros_like(z),
            n_enter=torch.full((b,), o.enter_first, dtype=torch.long, device=dev),
            cont=torch.zeros(b, dtype=torch.bool, device=dev),
            stage_r=torch.zeros(b, dtype=torch.long, device=dev),
            single=torch.zeros(b, dtype=torch.bool, device=dev),
            stuck=torch.zeros(b, dtype=torch.long, device=dev),
            rough=torch.full((b,), fista_start, dtype=torch.bool, device=dev),
        )
        if fista_start:
            near_rank = (z != 0).sum(-1) > o.direct_frac * prob.rank
            _start_continuation(prob, st, torch.nonzero(near_rank).squeeze(-1), info)
        return st


def _expected_support(c, lam, nonneg):
    """Mean number of atoms violating the optimality conditions at zero (``|2 a_j^T x| >
    lam``, ``2 a_j^T x > lam`` non-negative), halved for the plain Lasso: an estimate of the
    support size that decides the warm start. On the benchmark instance the exact support
    is 0.23-0.28 of the plain count and 0.37-0.47 of the non-negative one."""
    if nonneg:
        return (2.0 * c > lam).sum(-1).double().mean()
    return 0.5 * (2.0 * c.abs() > lam).sum(-1).double().mean()


def _start_continuation(prob: Problem, st: _Signals, ids, info) -> None:
    """Signals ``ids`` start the continuation path from zero: the first stage's lambda lets
    ``enter_first`` atoms enter (at most half the rank)."""
    if ids.numel() == 0:
        return
    st.cont[ids] = True
    st.z[ids] = 0.0
    st.anchor[ids] = 0.0
    st.n_enter[ids] = min(prob.opts.enter_first, max(1, prob.rank // 2))
    top = torch.full_like(st.xx[ids], math.inf)
    st.lam_cur[ids] = _entry_lambda(
        2.0 * st.c[ids], st.z[ids], st.n_enter[ids], prob.lam, prob.nonneg, top
    )
    st.stage_r[ids] = 0
    st.single[ids] = False
    info["continuation"] += int(ids.numel())


def _next_stages(prob: Problem, st: _Signals, ids, g, info) -> None:
    """Signals ``ids`` finished a stage above ``lam`` (correlations ``g``): the next stage
    starts from its solution, with a lambda that lets about as many atoms enter as the
    support has (at least ``enter_min``, at most half the room below the rank). Near the
    rank (room of at most ``saturated_room`` atoms) the path goes to ``lam`` at once, one
    entering atom per round: there atoms mostly swap places."""
    o = prob.opts
    st.anchor[ids] = st.z[ids]
    s = (st.z[ids] != 0).sum(-1)
    room = ((prob.rank - s) // 2).clamp_min(1)
    st.n_enter[ids] = torch.minimum(s.clamp_min(o.enter_min), room)
    st.lam_cur[ids] = _entry_lambda(
        g, st.z[ids], st.n_enter[ids], prob.lam, prob.nonneg, st.lam_cur[ids]
    )
    full = room <= o.saturated_room
    st.lam_cur[ids[full]] = prob.lam
    st.n_enter[ids[full]] = 1
    st.stage_r[ids] = 0
    st.single[ids] = full
    info["stages"] += int(ids.numel())


def _restart_slow(prob: Problem, st: _Signals, todo, g, info) -> torch.Tensor:
    """Signals that spent too many rounds in their stage: from the warm start, the
    continuation path from zero; on the path, back to the stage's start with half as many
    entering atoms. Returns ``g`` updated for them."""
    o = prob.opts
    limit = torch.where(st.cont[todo], o.stage_rounds, o.bulk_rounds)
    slow = st.stage_r[todo] >= limit
    fresh = slow & ~st.cont[todo]
    if bool(fresh.any()):
        _start_continuation(prob, st, todo[fresh], info)
        g[fresh] = 2.0 * st.c[todo[fresh]]
    back = slow & st.cont[todo] & ~fresh & (st.n_enter[todo] > 1)
    if bool(back.any()):
        ids = todo[back]
        st.z[ids] = st.anchor[ids]
        g[back] = 2.0 * (st.c[ids] - sparse_gram_product(st.anchor[ids], prob.G))
        st.n_enter[ids] = st.n_enter[ids] // 2
        top = torch.full_like(st.xx[ids], math.inf)
        st.lam_cur[ids] = _entry_lambda(
            g[back], st.z[ids], st.n_enter[ids], prob.lam, prob.nonneg, top
        )
        st.stage_r[ids] = 0
        st.single[ids] = False
        info["restarts"] += int(ids.numel())
    return g


def _feature_sign_pass(prob: Problem, st: _Signals, todo, g, first: bool, info) -> None:
    """One feature-sign round for the signals ``todo`` (correlations ``g``), in groups of
    similar support size (padding to the largest costs ``p^3`` each); the first round and
    stages above ``lam`` in float32. Signals whose round changed nothing continue with one
    entering atom per round."""
    z_old = st.z[todo]
    lc = st.lam_cur[todo].unsqueeze(-1)
    viol = (g if prob.nonneg else g.abs()) > lc
    size = (z_old != 0).sum(-1) + (viol & (z_old == 0)).sum(-1)
    # off the continuation path, at most as many atoms enter as the support has (and at
    # least enter_bulk): from a zero start the support grows geometrically instead of taking
    # every violator at once (about 4x the final support at lambda 0.2 on the benchmark)
    nnz = (z_old != 0).sum(-1)
    cap = torch.where(st.cont[todo], z_old.shape[1], nnz.clamp_min(prob.opts.enter_bulk))
    size = torch.minimum(size, nnz + cap)
    # the first round, and the continuation stages above lam (which only need a support
    # within stage_tol), in float32: half the memory traffic, faster Cholesky
    rough = (st.lam_cur[todo] > prob.lam) & prob.opts.stage_float32
    parts = []
    for sub, f32 in ((~rough, first), (rough, True)):
        sel = torch.nonzero(sub).squeeze(-1)
        parts += [(sel[p], f32) for p in _size_groups(size[sel], prob.opts.sub_batch)]
    for part, f32 in parts:
        ids = todo[part]
        st.z[ids] = _feature_sign_round(
            prob.Ge32 if f32 else prob.Ge,
            st.c[ids],
            st.xx[ids],
            z_old[part],
            g[part],
            st.lam_cur[ids],
            prob.nonneg,
            st.single[ids],
            cap[part],
        )
        st.rough[ids] = f32
    st.stage_r[todo] += 1
    stuck = (st.z[todo] == z_old).all(-1)
    st.single[todo[stuck]] = True
    st.stuck[todo] = torch.where(stuck, st.stuck[todo] + 1, 0)
    info["stalls"] += int(stuck.sum())
    info["rounds"] += 1


def solve_chunk(prob: Problem, xc, c, info, out) -> None:
    """:func:`~deepunfold.solvers.lasso.lasso_active_set` on one chunk of signals ``xc`` (``c
    = xc @ A``), codes into ``out``."""
    o, lam = prob.opts, prob.lam
    st = _Signals.warm_started(prob, xc, c, info)
    todo = torch.arange(xc.shape[0], device=c.device)
    # a float32 first round pays off after FISTA (large supports); from zero (small supports)
    # it would only add the float64 round that must follow it
    f32_first = bool(st.rough.any())
    hopeless = []
    for r in range(o.max_rounds):
        g = 2.0 * (st.c[todo] - sparse_gram_product(st.z[todo], prob.G))
        lc = st.lam_cur[todo]
        viol = kkt_from_correlation(g, st.z[todo], lc.unsqueeze(-1), prob.nonneg)
        final = lc == lam
        done = final & (viol <= o.tol * lc) & ~st.rough[todo]
        # stalled on the target lambda: the homotopy takes over
        stalled = ~done & (st.stuck[todo] >= o.stall_rounds)
        if bool(stalled.any()):
            hopeless.append(todo[stalled])
        keep = ~done & ~stalled
        todo, g, viol, final = todo[keep], g[keep], viol[keep], final[keep]
        if todo.numel() == 0:
            break
        staged = ~final & (viol <= o.stage_tol * st.lam_cur[todo])
        if bool(staged.any()):
            _next_stages(prob, st, todo[staged], g[staged], info)
        g = _restart_slow(prob, st, todo, g, info)
        _feature_sign_pass(prob, st, todo, g, r == 0 and f32_first, info)
    else:
        hopeless.append(todo)
    left = torch.cat(hopeless) if hopeless else todo[:0]
    if left.numel():
        info["homotopy"] += int(left.numel())
        st.z[left] = _homotopy_rows(prob, st.c[left])
        _polish(prob, st, left, info)
    out.copy_(st.z)


def _polish(prob: Problem, st: _Signals, todo, info, rounds: int = 10) -> None:
    """Feature-sign rounds at ``lam`` from the homotopy's codes for the signals ``todo``
    still above the tolerance: the homotopy keeps nearly dependent atoms (1 - cos below
    about 1e-10) out of its factor, which leaves their correlations slightly off."""
    st.lam_cur[todo] = prob.lam
    st.single[todo] = False
    for _ in range(rounds):
        g = 2.0 * (st.c[todo] - sparse_gram_product(st.z[todo], prob.G))
        viol = kkt_from_correlation(g, st.z[todo], prob.lam, prob.nonneg)
        left = viol > prob.opts.tol * prob.lam
        todo, g = todo[left], g[left]
        if todo.numel() == 0:
            return
        _feature_sign_pass(prob, st, todo, g, False, info)


def _homotopy_rows(prob: Problem, c) -> torch.Tensor:
    """:func:`~deepunfold.solvers.lasso.lasso_homotopy` for each row of ``c`` (on the CPU, in
    float64)."""
    import deepunfold.solvers.lasso.kernels as kernels

    G = prob.G.double().cpu().numpy()
    C = c.double().cpu().numpy()
    W, _ = kernels.lars_rows(
        G, C, prob.lam / 2.0, nonneg=prob.nonneg, max_steps=10 * G.shape[0] + 100, kmax=prob.kmax
    )
    return torch.from_numpy(W).to(c.device, c.dtype)
