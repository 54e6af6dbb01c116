r"""The exact Lasso for many signals over one dictionary: active set, homotopy fallback.

For each signal :math:`z \in \mathbb R^d` and a dictionary :math:`A \in \mathbb R^{d \times
c}` (atoms as columns, any norms but none zero) the code is

.. math::
    w^\star = \arg\min_w\ F_\lambda(w) = \|z - A w\|_2^2 + \lambda \|w\|_1
    \qquad (\text{optionally } w \ge 0),

in the scale of seed 001: no factor 1/2 on the squared error (the half-scale Lasso
:math:`\tfrac12\|z - Aw\|^2 + \mu\|w\|_1` of :mod:`deepunfold.solvers.proximal_gradient`,
scikit-learn's ``lasso_lars`` and SPAMS has the same minimiser at :math:`\mu = \lambda/2`).

Optimality (KKT) conditions, with the correlation :math:`g = 2A^\top(z - Aw)`:
:math:`g_j = \lambda\,\mathrm{sign}(w_j)` where :math:`w_j \ne 0`, :math:`|g_j| \le \lambda`
where :math:`w_j = 0` (non-negative variant: :math:`g_j = \lambda` where :math:`w_j > 0`,
:math:`g_j \le \lambda` where :math:`w_j = 0`). :func:`kkt_violation` is the largest
violation, in units of :math:`\lambda`; :func:`duality_gap` the relative duality gap.

:func:`lasso_active_set` is the solver; it works on the Gram matrix :math:`G = A^\top A` and
the correlations :math:`A^\top z`, on the device of its tensors:

1. signals whose code is zero (:math:`\max_j |2 a_j^\top z| \le \lambda`) are done at once;
2. on the CPU (``method="compiled"``, the default there), each signal is solved by a compiled
   active set (:mod:`deepunfold.solvers._lasso_kernels`): the most violating atoms enter, the
   sign-fixed quadratic on the support is minimised exactly with a Cholesky factor updated in
   place (one row per entering atom, Givens rotations per leaving atom), the point steps to
   the first zero crossing where a sign disagrees, and a violator in the span of the support
   is swapped in for the first atom to reach zero;
3. on other devices (``method="batched"``): a warm start (a few float32 FISTA iterations
   where many atoms are expected to be active, zero where few are,
   :func:`_expected_support`), then batched *feature-sign* rounds
   (:func:`_feature_sign_round`: exact Cholesky solves on support plus KKT violators,
   sign-fixed, the objective never increases), with a *continuation* path (a decreasing
   sequence of lambdas from zero) for signals whose support comes near the rank of
   :math:`A`; the per-signal state of these rounds is one :class:`_Signals` object, and each
   kind of step is a function of its own (:func:`_start_continuation`, :func:`_next_stages`,
   :func:`_restart_slow`, :func:`_feature_sign_pass`);
4. a signal either path gives up on goes to :func:`lasso_homotopy`, the LARS-Lasso path on
   the Gram matrix with Cholesky updates, which reaches the minimiser in finitely many steps
   (atoms in the span of the active ones, such as exact duplicates, are kept out: their
   correlation stays tied at the current lambda along the path), and is polished from there;
5. every code is checked: a KKT violation above ``tol * lambda`` raises
   :class:`LassoNotConverged` unless the caller asked for a budget
   (``on_unconverged="warn"``).

Threads: on the CPU the signals are split across ``threads`` worker threads in chunks, each
chunk solved with one BLAS/LAPACK thread. Batched LAPACK calls threaded inside oneMKL are not
used: with 2 or more threads torch's batched LU solve (``getrf``/``getrs`` through oneMKL)
returned invalid pivots on near-singular systems ("Parameter 6 was incorrect on entry to
DLASWP", then ``Pivots given to lu_solve must all be greater or equal to 1``), and for the
small factorisations here one thread per chunk is faster anyway.
"""

from __future__ import annotations

import math
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from deepunfold.ops.prox import soft_threshold
from deepunfold.solvers.proximal_gradient import Momentum, lipschitz_constant

__all__ = [
    "LassoNotConverged",
    "check_lasso_inputs",
    "objective",
    "kkt_violation",
    "kkt_rounding_bound",
    "duality_gap",
    "lasso_active_set",
    "lasso_homotopy",
]


class LassoNotConverged(RuntimeError):
    """Some codes are above the KKT tolerance after every step the solver allows."""


def check_lasso_inputs(z: torch.Tensor, A: torch.Tensor, lam: float) -> None:
    """Raise a ``ValueError`` naming the problem if ``(z, A, lam)`` is not a valid Lasso.

    ``z`` must be ``(batch, d)`` and ``A`` ``(d, c)``, both finite, every atom (column of
    ``A``) of non-zero norm, and ``lam`` a finite number above zero.
    """
    if not torch.is_tensor(z) or not torch.is_tensor(A):
        raise ValueError("signals z and dictionary A must be torch tensors")
    if z.ndim != 2:
        raise ValueError(f"signals z must be 2-D (batch, d), got shape {tuple(z.shape)}")
    if A.ndim != 2:
        raise ValueError(f"dictionary A must be 2-D (d, atoms), got shape {tuple(A.shape)}")
    if z.shape[1] != A.shape[0]:
        raise ValueError(
            f"shape mismatch: signals have dimension {z.shape[1]} but the dictionary's atoms "
            f"have dimension {A.shape[0]} (z is (batch, d), A is (d, atoms))"
        )
    if z.device != A.device:
        raise ValueError(f"signals are on {z.device} but the dictionary is on {A.device}")
    if A.shape[1] == 0:
        raise ValueError("the dictionary has no atoms")
    if not bool(torch.isfinite(z).all()):
        bad = int((~torch.isfinite(z)).any(-1).sum())
        raise ValueError(f"signals contain non-finite values (NaN or inf) in {bad} row(s)")
    if not bool(torch.isfinite(A).all()):
        raise ValueError("the dictionary contains non-finite values (NaN or inf)")
    norms = torch.linalg.vector_norm(A, dim=0)
    if bool((norms == 0).any()):
        cols = torch.nonzero(norms == 0).squeeze(-1)[:5].tolist()
        raise ValueError(f"the dictionary has zero-norm atoms (columns {cols}...)")
    try:
        lam = float(lam)
    except (TypeError, ValueError) as err:
        raise ValueError(f"lambda must be a number, got {lam!r}") from err
    if not (math.isfinite(lam) and lam > 0):
        raise ValueError(f"lambda must be a finite number above 0, got {lam}")


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


def _rounding_factors(A: torch.Tensor) -> tuple[float, float]:
    """``(gamma, max atom norm)`` of :func:`kkt_rounding_bound`."""
    d, n = A.shape
    u = 2.0**-53
    m = d + n
    gam = m * u / (1.0 - m * u)
    return gam, float(torch.linalg.vector_norm(A, dim=0).max())


def kkt_rounding_bound(z: torch.Tensor, A: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r"""Per row, a bound on the float64 rounding error of the correlations :math:`g`.

    :math:`g_j = 2(a_j^\top z - \sum_k (a_j^\top a_k) w_k)` is computed from length-:math:`d`
    dot products and a sum over at most :math:`c` atoms, so its error is at most
    :math:`2\gamma_{d+c}\max_j\|a_j\|\,(\|z\| + \max_k\|a_k\|\,\|w\|_1)` with
    :math:`\gamma_m = mu/(1 - mu)`, :math:`u = 2^{-53}`. A KKT violation below it cannot be
    told from zero; for tiny lambdas (about :math:`10^{-7}\lambda_{\max}` on 50 x 100
    dictionaries) it exceeds ``tol * lambda``, and :func:`lasso_active_set` then accepts
    violations up to it (``info["rounding_limited"]`` counts those signals).
    """
    return _rounding_bound(z, A, w.abs().sum(-1))


def _rounding_bound(z: torch.Tensor, A: torch.Tensor, l1: torch.Tensor) -> torch.Tensor:
    """:func:`kkt_rounding_bound` from the codes' l1 norms ``l1``."""
    gam, amax = _rounding_factors(A)
    zn = torch.linalg.vector_norm(z.to(torch.float64), dim=-1)
    return 2.0 * gam * amax * (zn + amax * l1.to(zn.device, zn.dtype))


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
    pos = torch.arange(p, device=mask.device).unsqueeze(0)
    valid = pos < counts.unsqueeze(-1)
    # compaction by a running count (faster than a stable sort): the k-th True entry of a row
    # goes to position k, in the original order; False entries go to a spare last column
    slot = torch.where(mask, mask.cumsum(-1) - 1, p)
    cols = torch.arange(n, device=mask.device).expand_as(mask)
    idx = (n + torch.arange(p + 1, device=mask.device)).repeat(mask.shape[0], 1)
    idx.scatter_(1, slot, cols)
    return idx[:, :p], valid


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


def _sparse_gram_product(w: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """``w @ G`` exploiting the sparsity of the codes (cost ``nnz * c`` instead of ``b * c^2``)."""
    return torch.sparse.mm(w.to_sparse(), G)


def _kkt_from_correlation(g, w, lam, nonneg):
    r"""Largest KKT violation per row from the correlations ``g = 2(c - Gw)``.

    Off the support :math:`\max(|g_j| - \lambda, 0)`; on it :math:`|g_j -
    \lambda\,\mathrm{sign}(w_j)|`, which is at least :math:`|g_j| - \lambda`, so the
    maximum of the first over all atoms and the second over the support is the same value
    with fewer passes over the dense ``(b, c)`` arrays (the support is sparse).
    """
    lam = torch.as_tensor(lam, dtype=g.dtype, device=g.device)
    lam_row = lam.reshape(-1) if lam.numel() > 1 else lam.reshape(1).expand(g.shape[0])
    top = g.amax(-1) if nonneg else torch.maximum(g.amax(-1), -g.amin(-1))
    out = torch.relu(top - lam_row)
    rows, cols = torch.nonzero(w, as_tuple=True)
    if rows.numel():
        on = (g[rows, cols] - lam_row[rows] * torch.sign(w[rows, cols])).abs()
        out = out.scatter_reduce(0, rows, on, reduce="amax")
    return out


def _feature_sign_round(Ge, c, zz, w, g, lam, nonneg, single, cap=None, n_cross=8):
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
    new_S = pts[torch.arange(pts.shape[0], device=pts.device), best]
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
    cpu = base.device.type == "cpu"
    y, v, momentum = w, torch.empty_like(base), Momentum()
    for k in range(n_iter):
        if k == 0:  # y = 0
            v.copy_(base)
        else:
            if cpu:
                np.matmul(y.numpy(), M32.numpy(), out=v.numpy())
            else:
                torch.matmul(y, M32, out=v)
            v.add_(base)
        w_new = soft_threshold(v, thr, nonneg=nonneg)
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


@dataclass(frozen=True)
class _Options:
    """Tuning of :func:`lasso_active_set` (see its arguments)."""

    tol: float
    warm: str
    warm_iter: int
    zero_start_max: int
    bulk_rounds: int
    direct_frac: float
    enter_min: int
    enter_first: int
    stage_tol: float
    stage_rounds: int
    saturated_room: int
    max_rounds: int
    stall_rounds: int
    sub_batch: int
    enter_bulk: int
    enter_growth: float
    stage_float32: bool


class _Problem:
    """What every chunk of one solve shares: the dictionary, its Gram matrix, lambda, the
    options. The extended Gram matrix, the FISTA step, its iteration matrix and the rank are
    computed on first use (the compiled path needs none of them)."""

    def __init__(self, A: torch.Tensor, lam: float, nonneg: bool, opts: _Options):
        self.A, self.lam, self.nonneg, self.opts = A, lam, nonneg, opts
        self.G = A.T @ A

    @cached_property
    def Ge(self) -> torch.Tensor:  # the batched path's (the compiled path needs only G)
        return _extended_gram(self.G)

    @cached_property
    def Ge32(self) -> torch.Tensor:
        return self.Ge.to(torch.float32)

    @cached_property
    def step(self) -> float:
        return 1.0 / lipschitz_constant(self.A)

    @cached_property
    def A32(self) -> torch.Tensor:
        return self.A.to(torch.float32)

    @cached_property
    def M32(self) -> torch.Tensor:
        eye = torch.eye(self.G.shape[0], dtype=self.G.dtype, device=self.G.device)
        return (eye - self.step * self.G).to(torch.float32)

    @property
    def kmax(self) -> int:
        """The most atoms a support can hold (the rank of ``A`` is at most this)."""
        return min(self.A.shape)

    @cached_property
    def G64(self) -> np.ndarray:
        """The Gram matrix as a C-contiguous float64 NumPy array (compiled path)."""
        return np.ascontiguousarray(self.G.detach().cpu().numpy(), dtype=np.float64)

    @cached_property
    def rank(self) -> int:
        A = self.A
        ev = torch.linalg.eigvalsh(A @ A.T if A.shape[0] <= A.shape[1] else self.G)
        return int((ev > 1e-10 * ev[-1].clamp_min(1e-300)).sum())


@dataclass
class _Signals:
    """Per-signal state of one chunk of :func:`lasso_active_set`: one row per signal.

    Attributes:
        c: :math:`A^\\top z`.
        zz: :math:`\\|z\\|^2`.
        w: the current codes (float64).
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
    zz: torch.Tensor
    w: torch.Tensor
    lam_cur: torch.Tensor
    anchor: torch.Tensor
    n_enter: torch.Tensor
    cont: torch.Tensor
    stage_r: torch.Tensor
    single: torch.Tensor
    stuck: torch.Tensor
    rough: torch.Tensor

    @classmethod
    def warm_started(cls, prob: _Problem, zc, c, info) -> _Signals:
        """The state after the warm start (FISTA, or zero where supports are expected small);
        warm starts near the rank take the continuation path at once."""
        o = prob.opts
        b = zc.shape[0]
        fista_start = o.warm == "fista" or (
            o.warm == "auto"
            and float(_expected_support(c, prob.lam, prob.nonneg)) > o.zero_start_max
        )
        if fista_start:
            w = _fista_warm_start(
                zc, prob.A32, prob.M32, prob.lam, prob.step, o.warm_iter, prob.nonneg
            )
            w = w.to(torch.float64)
            info["fista_iter"] += o.warm_iter
        else:
            w = torch.zeros_like(c)
        dev = c.device
        st = cls(
            c=c,
            zz=zc.pow(2).sum(-1),
            w=w,
            lam_cur=torch.full((b,), prob.lam, dtype=c.dtype, device=dev),
            anchor=torch.zeros_like(w),
            n_enter=torch.full((b,), o.enter_first, dtype=torch.long, device=dev),
            cont=torch.zeros(b, dtype=torch.bool, device=dev),
            stage_r=torch.zeros(b, dtype=torch.long, device=dev),
            single=torch.zeros(b, dtype=torch.bool, device=dev),
            stuck=torch.zeros(b, dtype=torch.long, device=dev),
            rough=torch.full((b,), fista_start, dtype=torch.bool, device=dev),
        )
        if fista_start:
            near_rank = (w != 0).sum(-1) > o.direct_frac * prob.rank
            _start_continuation(prob, st, torch.nonzero(near_rank).squeeze(-1), info)
        return st


def _expected_support(c, lam, nonneg):
    """Mean number of atoms violating the optimality conditions at zero (``|2 a_j^T z| >
    lam``, ``2 a_j^T z > lam`` non-negative), halved for the plain Lasso: an estimate of the
    support size that decides the warm start. On the benchmark instance the exact support
    is 0.23-0.28 of the plain count and 0.37-0.47 of the non-negative one."""
    if nonneg:
        return (2.0 * c > lam).sum(-1).double().mean()
    return 0.5 * (2.0 * c.abs() > lam).sum(-1).double().mean()


def _start_continuation(prob: _Problem, st: _Signals, ids, info) -> None:
    """Signals ``ids`` start the continuation path from zero: the first stage's lambda lets
    ``enter_first`` atoms enter (at most half the rank)."""
    if ids.numel() == 0:
        return
    st.cont[ids] = True
    st.w[ids] = 0.0
    st.anchor[ids] = 0.0
    st.n_enter[ids] = min(prob.opts.enter_first, max(1, prob.rank // 2))
    top = torch.full_like(st.zz[ids], math.inf)
    st.lam_cur[ids] = _entry_lambda(
        2.0 * st.c[ids], st.w[ids], st.n_enter[ids], prob.lam, prob.nonneg, top
    )
    st.stage_r[ids] = 0
    st.single[ids] = False
    info["continuation"] += int(ids.numel())


def _next_stages(prob: _Problem, st: _Signals, ids, g, info) -> None:
    """Signals ``ids`` finished a stage above ``lam`` (correlations ``g``): the next stage
    starts from its solution, with a lambda that lets about as many atoms enter as the
    support has (at least ``enter_min``, at most half the room below the rank). Near the
    rank (room of at most ``saturated_room`` atoms) the path goes to ``lam`` at once, one
    entering atom per round: there atoms mostly swap places."""
    o = prob.opts
    st.anchor[ids] = st.w[ids]
    s = (st.w[ids] != 0).sum(-1)
    room = ((prob.rank - s) // 2).clamp_min(1)
    st.n_enter[ids] = torch.minimum(s.clamp_min(o.enter_min), room)
    st.lam_cur[ids] = _entry_lambda(
        g, st.w[ids], st.n_enter[ids], prob.lam, prob.nonneg, st.lam_cur[ids]
    )
    full = room <= o.saturated_room
    st.lam_cur[ids[full]] = prob.lam
    st.n_enter[ids[full]] = 1
    st.stage_r[ids] = 0
    st.single[ids] = full
    info["stages"] += int(ids.numel())


def _restart_slow(prob: _Problem, st: _Signals, todo, g, info) -> torch.Tensor:
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
        st.w[ids] = st.anchor[ids]
        g[back] = 2.0 * (st.c[ids] - _sparse_gram_product(st.anchor[ids], prob.G))
        st.n_enter[ids] = st.n_enter[ids] // 2
        top = torch.full_like(st.zz[ids], math.inf)
        st.lam_cur[ids] = _entry_lambda(
            g[back], st.w[ids], st.n_enter[ids], prob.lam, prob.nonneg, top
        )
        st.stage_r[ids] = 0
        st.single[ids] = False
        info["restarts"] += int(ids.numel())
    return g


def _feature_sign_pass(prob: _Problem, st: _Signals, todo, g, first: bool, info) -> None:
    """One feature-sign round for the signals ``todo`` (correlations ``g``), in groups of
    similar support size (padding to the largest costs ``p^3`` each); the first round and
    stages above ``lam`` in float32. Signals whose round changed nothing continue with one
    entering atom per round."""
    w_old = st.w[todo]
    lc = st.lam_cur[todo].unsqueeze(-1)
    viol = (g if prob.nonneg else g.abs()) > lc
    size = (w_old != 0).sum(-1) + (viol & (w_old == 0)).sum(-1)
    # off the continuation path, at most as many atoms enter as the support has (and at
    # least enter_bulk): from a zero start the support grows geometrically instead of taking
    # every violator at once (about 4x the final support at lambda 0.2 on the benchmark)
    nnz = (w_old != 0).sum(-1)
    cap = torch.where(st.cont[todo], w_old.shape[1], nnz.clamp_min(prob.opts.enter_bulk))
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
        st.w[ids] = _feature_sign_round(
            prob.Ge32 if f32 else prob.Ge,
            st.c[ids],
            st.zz[ids],
            w_old[part],
            g[part],
            st.lam_cur[ids],
            prob.nonneg,
            st.single[ids],
            cap[part],
        )
        st.rough[ids] = f32
    st.stage_r[todo] += 1
    stuck = (st.w[todo] == w_old).all(-1)
    st.single[todo[stuck]] = True
    st.stuck[todo] = torch.where(stuck, st.stuck[todo] + 1, 0)
    info["stalls"] += int(stuck.sum())
    info["rounds"] += 1


def _solve_chunk(prob: _Problem, zc, c, info, out) -> None:
    """:func:`lasso_active_set` on one chunk of signals (``c = zc @ A``), codes into ``out``."""
    o, lam = prob.opts, prob.lam
    st = _Signals.warm_started(prob, zc, c, info)
    todo = torch.arange(zc.shape[0], device=c.device)
    # a float32 first round pays off after FISTA (large supports); from zero (small supports)
    # it would only add the float64 round that must follow it
    f32_first = bool(st.rough.any())
    hopeless = []
    for r in range(o.max_rounds):
        g = 2.0 * (st.c[todo] - _sparse_gram_product(st.w[todo], prob.G))
        lc = st.lam_cur[todo]
        viol = _kkt_from_correlation(g, st.w[todo], lc.unsqueeze(-1), prob.nonneg)
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
        st.w[left] = _homotopy_rows(prob, st.c[left])
        _polish(prob, st, left, info)
    out.copy_(st.w)


def _kkt_check(prob: _Problem, c, w) -> tuple[torch.Tensor, torch.Tensor]:
    """``(violation, l1 norm)`` of every code, the violation recomputed from ``c``, the Gram
    matrix and the codes alone (not from a solver's state): by a compiled row-by-row kernel
    on the CPU, by a sparse product on other devices."""
    if w.device.type == "cpu":
        from deepunfold.solvers import _lasso_kernels as kernels

        mu = prob.lam / 2.0
        viol, l1 = kernels.kkt_rows(
            prob.G64, c.detach().numpy(), w.detach().numpy(), mu, nonneg=prob.nonneg
        )
        return torch.from_numpy(viol), torch.from_numpy(l1)
    g = 2.0 * (c - _sparse_gram_product(w, prob.G))
    return _kkt_from_correlation(g, w, prob.lam, prob.nonneg), w.abs().sum(-1)


def _solve_chunk_compiled(prob: _Problem, zc, c, info, out) -> None:
    """:func:`lasso_active_set` on one chunk by the compiled per-signal kernels (CPU), codes
    written into ``out`` (every element)."""
    from deepunfold.solvers import _lasso_kernels as kernels

    o = prob.opts
    gam, amax = _rounding_factors(prob.A)
    znorm = torch.linalg.vector_norm(zc, dim=-1).numpy()
    floors = np.stack([gam * amax * znorm, np.full_like(znorm, gam * amax * amax)], axis=1)
    _, stats = kernels.solve_rows(
        prob.G64,
        c.detach().numpy(),
        prob.lam / 2.0,
        nonneg=prob.nonneg,
        tol=o.tol,
        floors=floors,
        max_rounds=o.max_rounds,
        enter_min=o.enter_bulk,
        growth=o.enter_growth,
        max_steps=10 * prob.G64.shape[0] + 100,
        kmax=prob.kmax,
        out=out.numpy(),
    )
    info["rounds"] += int(stats[kernels.ROUNDS])
    info["removed"] += int(stats[kernels.REMOVED])
    info["homotopy"] += int(stats[kernels.FALLBACK])


def _polish(prob: _Problem, st: _Signals, todo, info, rounds: int = 10) -> None:
    """Feature-sign rounds at ``lam`` from the homotopy's codes for the signals ``todo``
    still above the tolerance: the homotopy keeps nearly dependent atoms (1 - cos below
    about 1e-10) out of its factor, which leaves their correlations slightly off."""
    st.lam_cur[todo] = prob.lam
    st.single[todo] = False
    for _ in range(rounds):
        g = 2.0 * (st.c[todo] - _sparse_gram_product(st.w[todo], prob.G))
        viol = _kkt_from_correlation(g, st.w[todo], prob.lam, prob.nonneg)
        left = viol > prob.opts.tol * prob.lam
        todo, g = todo[left], g[left]
        if todo.numel() == 0:
            return
        _feature_sign_pass(prob, st, todo, g, False, info)


def _homotopy_rows(prob: _Problem, c) -> torch.Tensor:
    """:func:`lasso_homotopy` for each row of ``c`` (on the CPU, in float64)."""
    from deepunfold.solvers import _lasso_kernels as kernels

    G = prob.G.double().cpu().numpy()
    C = c.double().cpu().numpy()
    W, _ = kernels.lars_rows(
        G, C, prob.lam / 2.0, nonneg=prob.nonneg, max_steps=10 * G.shape[0] + 100, kmax=prob.kmax
    )
    return torch.from_numpy(W).to(c.device, c.dtype)


def lasso_homotopy(
    G: np.ndarray, c: np.ndarray, lam: float, *, nonneg: bool = False, max_steps: int | None = None
) -> np.ndarray:
    r"""Exact Lasso code of one signal by the homotopy (LARS-Lasso) path on the Gram matrix.

    Minimises :math:`w^\top G w - 2c^\top w + \lambda\|w\|_1` (:math:`G = A^\top A`,
    :math:`c = A^\top z`: :func:`objective` up to the constant :math:`\|z\|^2`), optionally
    with :math:`w \ge 0`. Following Efron et al. (2004) with the Lasso modification, the path
    starts at :math:`w = 0`, :math:`\mu = \max_j |c_j|` and lowers the half-scale threshold
    :math:`\mu` to :math:`\lambda/2`: on the active set :math:`S` with signs :math:`s`,
    :math:`w_S(\mu) = G_{SS}^{-1}(c_S - \mu s)` is linear in :math:`\mu`, and the next kink is
    the first atom whose correlation :math:`|c_j - G_j w|` reaches :math:`\mu` (it enters) or
    the first active coefficient that reaches zero (it leaves). :math:`G_{SS}` is held as a
    Cholesky factor with one row added per entering atom and one removed (Givens rotations)
    per leaving atom. An atom whose column would make :math:`G_{SS}` singular (it lies in the
    span of the active ones: an exact duplicate, say) is kept out; its correlation then stays
    tied at :math:`\mu` along the segment, so the conditions hold for it, and it is
    considered again after the next removal. The final coefficients are solved once more on
    the support. Compiled (:mod:`deepunfold.solvers._lasso_kernels`).

    Args:
        G: ``(c, c)`` Gram matrix (float64).
        c: ``(c,)`` correlations :math:`A^\top z`.
        lam: lambda (seed scale, > 0).
        nonneg: non-negative codes.
        max_steps: kinks at most (default ``10 * c + 100``).

    Returns:
        ``(c,)`` float64 code.
    """
    from deepunfold.solvers import _lasso_kernels as kernels

    G = np.asarray(G, dtype=np.float64)
    n = G.shape[0]
    W, _ = kernels.lars_rows(
        G,
        np.asarray(c, dtype=np.float64)[None],
        lam / 2.0,
        nonneg=nonneg,
        max_steps=max_steps or 10 * n + 100,
        kmax=n,
    )
    return W[0]


def lasso_active_set(
    z: torch.Tensor,
    A: torch.Tensor,
    lam: float,
    *,
    nonneg: bool = False,
    tol: float = 1e-9,
    warm: str = "auto",
    warm_iter: int = 45,
    zero_start_max: int = 300,
    bulk_rounds: int = 8,
    direct_frac: float = 0.6,
    enter_min: int = 64,
    enter_first: int = 150,
    stage_tol: float = 0.3,
    stage_rounds: int = 10,
    saturated_room: int = 8,
    max_rounds: int = 200,
    stall_rounds: int = 4,
    chunk_size: int = 500,
    sub_batch: int = 64,
    enter_bulk: int = 16,
    enter_growth: float = 0.25,
    stage_float32: bool = True,
    method: str = "auto",
    threads: int | None = None,
    on_unconverged: str = "raise",
    progress=None,
) -> tuple[torch.Tensor, dict]:
    r"""Exact Lasso codes :math:`\arg\min_w \|z - Aw\|^2 + \lambda\|w\|_1` for every row of ``z``.

    Two implementations of the same active-set method (module docstring,
    :mod:`deepunfold.solvers.lasso`), chosen by ``method``:

    * ``"compiled"`` (the CPU default): each signal is solved on its own by compiled kernels
      (:mod:`deepunfold.solvers._lasso_kernels`) holding the support's Cholesky factor,
      updated by one row per entering atom and Givens rotations per leaving atom. A round
      computes the correlations once, lets the most violating atoms enter (at least
      ``enter_bulk``, at most ``max(enter_bulk, enter_growth * support)``; one after a round
      whose entering atoms all left) and minimises the sign-fixed quadratic on the support
      exactly, stepping to the first zero crossing where a sign disagrees, so the objective
      never increases. A signal still above ``tol`` after ``max_rounds`` rounds, or whose
      violators all lie in the span of its support, is solved by the LARS homotopy
      (:func:`lasso_homotopy`) and polished by the active set from that code.
    * ``"batched"`` (the default on other devices): feature-sign rounds over batches of
      signals of similar support with batched Cholesky solves (torch, any device); the
      options below from ``warm`` to ``stage_float32`` tune it.

    Batched path: feature-sign rounds (:func:`_feature_sign_round`) on the support plus the
    KKT violators minimise the sign-fixed quadratic exactly (batched Cholesky of
    :math:`G_{SS}`) and keep the best of the points on the segment to it and its sign
    projection, so the objective never increases; a signal whose round made no progress
    continues with one entering atom per round. A signal leaves once its KKT violation
    (:func:`kkt_violation`) is at most ``tol * lam``.

    Supports near the rank :math:`r` of :math:`A` (small lambda: about 400 non-zeros of 512
    dimensions at lambda 0.01 on the benchmark instance) defeat rounds from the FISTA warm
    start (its early iterates have more than :math:`r` non-zeros, and each round then only
    removes one atom). Signals whose warm start has more than ``direct_frac * r`` non-zeros,
    or that are not converged after ``bulk_rounds`` rounds, take the *continuation* path:
    from zero, a decreasing sequence of lambdas down to ``lam``, each stage letting about
    ``enter_min`` (``enter_first`` for the first) or as many atoms as the support has enter,
    at most half the room below the rank; stages above ``lam`` stop at a KKT violation of
    ``stage_tol`` times their lambda; a stage that takes ``stage_rounds`` rounds restarts
    from its start with half as many entering atoms; once the room is at most
    ``saturated_room`` atoms the path goes to ``lam`` directly.

    A signal with ``stall_rounds`` consecutive rounds without change, or still unconverged
    after ``max_rounds`` rounds, is solved by :func:`lasso_homotopy` instead.

    Args:
        z: ``(batch, d)`` signals.
        A: ``(d, c)`` dictionary (no zero-norm atom).
        lam: lambda (seed scale), > 0.
        nonneg: constrain codes to be non-negative.
        tol: KKT tolerance relative to lambda.
        warm: ``"auto"`` (FISTA where the expected support, :func:`_expected_support`, is
            above ``zero_start_max`` atoms, else zero), ``"fista"`` or ``"zero"``. On the
            benchmark instance FISTA wins for supports of about 170 and more (lambda 0.05),
            zero below (lambda 0.1 and up), where FISTA's fixed cost dominates.
        warm_iter: FISTA iterations of the warm start.
        zero_start_max: see ``warm``.
        bulk_rounds: rounds from the warm start before a signal takes the continuation path.
        direct_frac: warm starts with more non-zeros than this fraction of the rank take the
            continuation path at once.
        enter_min, enter_first: atoms entering per continuation stage (at least; first stage).
        stage_tol: KKT tolerance (relative to the stage's lambda) of the stages above ``lam``.
        stage_rounds: rounds after which a continuation stage restarts with a smaller step.
        saturated_room: room (atoms that may enter) below which continuation goes to ``lam``.
        max_rounds: feature-sign rounds per chunk (compiled path: per signal) before the
            homotopy takes the rest.
        stall_rounds: consecutive rounds without change before the homotopy takes a signal.
        chunk_size: signals solved together (memory about ``chunk * support^2`` doubles).
        sub_batch: signals per feature-sign call (at most), grouped by support size.
        enter_bulk: off the continuation path, at most ``max(enter_bulk, support)`` atoms
            (the most violating) enter per round (compiled path: at least this many).
        enter_growth: compiled path: at most ``max(enter_bulk, enter_growth * support)``
            atoms enter per round (0.25 was fastest on the benchmark instance at lambda 0.01
            to 0.2; 0.5 and 1 let more enter that leave again).
        stage_float32: continuation stages above ``lam`` in float32 (the stage at ``lam``
            is always float64).
        method: ``"auto"`` (``"compiled"`` on the CPU, ``"batched"`` elsewhere),
            ``"compiled"`` (CPU tensors only) or ``"batched"``.
        threads: CPU worker threads, each solving whole chunks with one BLAS thread (default
            ``torch.get_num_threads()``); ignored on a GPU.
        on_unconverged: ``"raise"`` (default): :class:`LassoNotConverged` if any code is
            above the tolerance at the end; ``"warn"``: a warning, and the counts in ``info``.
        progress: optional callable ``progress(n_done)`` called after each chunk.

    Returns:
        ``(w, info)`` with the ``(batch, c)`` float64 codes and counters: ``zero`` (signals
        whose code is zero from the start), ``rounds`` (feature-sign rounds, summed over
        chunks; compiled path: over signals), ``removed`` (compiled path: atoms that left a
        support), ``fista_iter`` (warm-start iterations), ``stalls`` (rounds without progress),
        ``continuation`` (signals that took the continuation path), ``stages``, ``restarts``,
        ``homotopy`` (signals solved by the fallback), ``unconverged`` (signals above the
        tolerance at the end), ``rounding_limited`` (signals whose tolerance was raised to
        the rounding bound of :func:`kkt_rounding_bound`, above ``tol * lam``: tiny lambdas)
        and ``max_kkt`` (largest violation, units of lambda).
    """
    check_lasso_inputs(z, A, lam)
    if on_unconverged not in ("raise", "warn"):
        raise ValueError(f"on_unconverged must be 'raise' or 'warn', got {on_unconverged!r}")
    if warm not in ("auto", "fista", "zero"):
        raise ValueError(f"warm must be 'auto', 'fista' or 'zero', got {warm!r}")
    if method not in ("auto", "compiled", "batched"):
        raise ValueError(f"method must be 'auto', 'compiled' or 'batched', got {method!r}")
    if method == "compiled" and z.device.type != "cpu":
        raise ValueError(f"method='compiled' runs on the CPU; the signals are on {z.device}")
    lam = float(lam)
    opts = _Options(
        tol=tol,
        warm=warm,
        warm_iter=warm_iter,
        zero_start_max=zero_start_max,
        bulk_rounds=bulk_rounds,
        direct_frac=direct_frac,
        enter_min=enter_min,
        enter_first=enter_first,
        stage_tol=stage_tol,
        stage_rounds=stage_rounds,
        saturated_room=saturated_room,
        max_rounds=max_rounds,
        stall_rounds=stall_rounds,
        sub_batch=sub_batch,
        enter_bulk=enter_bulk,
        enter_growth=enter_growth,
        stage_float32=stage_float32,
    )
    z = z.to(torch.float64)
    A = A.to(torch.float64)
    cpu = z.device.type == "cpu"
    threads = max(1, int(threads or torch.get_num_threads())) if cpu else 1
    compiled = method == "compiled" or (method == "auto" and cpu)
    info = dict.fromkeys(_COUNTERS, 0)
    with _one_blas_thread(cpu):
        live = _maybe_nonzero(z, A, lam, nonneg)
        every = live.numel() == z.shape[0]
        c = (z if every else z[live]) @ A
        top = c.amax(-1) if nonneg else torch.maximum(c.amax(-1), -c.amin(-1))
        nonzero = 2.0 * top > lam
        info["zero"] = z.shape[0] - int(nonzero.sum())
        # the compiled kernels return a zero code after one O(p) pass: leaving those rows out
        # (copies of z, c and the codes) pays only where most codes are zero
        if not (compiled and every and 2 * info["zero"] < z.shape[0]):
            live, c = live[nonzero], c[nonzero]
            every = live.numel() == z.shape[0]
            if progress is not None and info["zero"]:
                progress(info["zero"])
        kkt = z.new_zeros(z.shape[0])  # zero codes: max(|2 a_j^T z| - lam, 0) = 0
        l1 = z.new_zeros(z.shape[0])
        if not live.numel():
            w = z.new_zeros(z.shape[0], A.shape[1])
        else:
            prob = _Problem(A, lam, nonneg, opts)
            solve = _solve_chunk_compiled if compiled else _solve_chunk
            wl = _run_chunks(prob, z if every else z[live], c, chunk_size, threads, progress,
                             info, solve)  # fmt: skip
            w = wl if every else z.new_zeros(z.shape[0], A.shape[1]).index_copy_(0, live, wl)
            # the check, from the Gram matrix (no second pass over the signals)
            kkt[live], l1[live] = _kkt_check(prob, c, wl)
    # below tol * lam the float64 correlations cannot be resolved for tiny lambdas: the check
    # then allows their rounding bound (kkt_rounding_bound)
    bound = _rounding_bound(z, A, l1)
    info["rounding_limited"] = int((bound > tol * lam).sum())
    bad = kkt > torch.clamp(bound, min=tol * lam)
    info["unconverged"] = int(bad.sum())
    info["max_kkt"] = float(kkt.max() / lam) if kkt.numel() else 0.0
    if info["unconverged"]:
        msg = (
            f"Lasso: {info['unconverged']} of {z.shape[0]} codes above the KKT tolerance "
            f"{tol:g} lambda after the homotopy fallback (largest {info['max_kkt']:.2e} lambda)"
        )
        if on_unconverged == "raise":
            raise LassoNotConverged(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
    return w, info


def _maybe_nonzero(z, A, lam, nonneg) -> torch.Tensor:
    r"""Indices of the signals whose code may be non-zero, by a float32 screen.

    The code of :math:`z` is zero iff :math:`\max_j |2a_j^\top z| \le \lambda`. The
    float32 product (twice as fast as float64) is off by at most :math:`(\gamma_d + 3u)
    \|z\|\|a_j\|` (:math:`u = 2^{-24}`, :math:`\gamma_d = du/(1 - du)`: rounding of the
    inputs and of a length-:math:`d` dot product), so signals below lambda by that margin
    have zero codes for certain; the others are checked exactly in float64.
    """
    d = z.shape[1]
    u = 2.0**-24
    if d * u >= 0.1:  # no useful bound
        return torch.arange(z.shape[0], device=z.device)
    A32 = A.to(torch.float32)
    bound = (d * u / (1 - d * u) + 3 * u) * 1.01
    a_max = float(A.norm(dim=0).max())

    def maybe(zs):
        c32 = zs.to(torch.float32) @ A32
        score = (2.0 * c32 if nonneg else 2.0 * c32.abs()).amax(-1).double()
        margin = 2.0 * bound * torch.linalg.vector_norm(zs, dim=-1) * a_max
        return score + margin > lam

    # the screen costs a float32 product of every signal: only where it removes many
    n_probe = min(256, z.shape[0])
    if float(maybe(z[:n_probe]).double().mean()) > 0.5:
        return torch.arange(z.shape[0], device=z.device)
    return torch.nonzero(maybe(z)).squeeze(-1)


_COUNTERS = (
    "zero",
    "rounds",
    "removed",
    "fista_iter",
    "stalls",
    "continuation",
    "stages",
    "restarts",
    "homotopy",
)


class _one_blas_thread:
    """Hold torch's intra-op threads and NumPy's BLAS/LAPACK to one thread (CPU solves): the
    parallelism is over chunks of signals instead (see the module docstring)."""

    def __init__(self, cpu: bool):
        self.cpu = cpu

    def __enter__(self):
        if self.cpu:
            from threadpoolctl import threadpool_limits

            self.torch_threads = torch.get_num_threads()
            torch.set_num_threads(1)
            self.limits = threadpool_limits(1, user_api="blas")
        return self

    def __exit__(self, *exc):
        if self.cpu:
            self.limits.unregister()
            torch.set_num_threads(self.torch_threads)


def _run_chunks(prob, z, c, chunk_size, threads, progress, info, solve_chunk) -> torch.Tensor:
    """Solve the signals in chunks, on ``threads`` worker threads when above one; each chunk
    writes its rows of one output (no per-chunk copies to concatenate)."""
    n = z.shape[0]
    out = c.new_empty(n, c.shape[1])  # every row is written by its chunk
    if threads > 1:  # at least two chunks per thread, so the threads finish together
        chunk_size = max(8, min(chunk_size, -(-n // (2 * threads))))
    starts = range(0, n, chunk_size)
    lock = threading.Lock()

    def solve(start):
        part = dict.fromkeys(_COUNTERS, 0)
        sl = slice(start, start + chunk_size)
        solve_chunk(prob, z[sl], c[sl], part, out[sl])
        with lock:
            for key in _COUNTERS:
                info[key] = info.get(key, 0) + part[key]
            if progress is not None:
                progress(min(chunk_size, n - start))

    if threads > 1 and len(starts) > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(solve, starts))
    else:
        for s in starts:
            solve(s)
    return out
