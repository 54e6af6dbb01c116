r"""Sparse concept codes of (aligned) embeddings: the Lasso over a concept dictionary.

For each aligned image embedding :math:`z \in \mathbb R^d` and the aligned concept dictionary
:math:`A \in \mathbb R^{d \times c}` (one unit-norm concept per column), the code is

.. math::
    w^\star = \arg\min_w\ F_\lambda(w) = \|z - A w\|_2^2 + \lambda \|w\|_1
    \qquad (\text{optionally } w \ge 0),

in the **scale of seed 001** (no factor 1/2 on the squared error, so its lambda sweep
{0.01, ..., 5} means the same here). The foundation solvers (:mod:`deepunfold.solvers`)
minimise :math:`\tfrac12\|z - Aw\|^2 + \mu\|w\|_1`; since :math:`F_\lambda = 2(\tfrac12\|z -
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
* ``"fista"``: accelerated proximal gradient (:func:`deepunfold.solvers.fista`),
* ``"active_set"``: the fast solver for this shape (many signals, ~1,000 atoms, sparse
  solutions), :func:`lasso_active_set`: a few FISTA iterations find an approximate support;
  batched *feature-sign* steps (exact Cholesky solves on the support with fixed signs, a
  line search over sign changes, all KKT violators entering at once) make it exact; every
  signal stops as soon as its KKT violation is below the tolerance.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .solvers import fista, ista, lipschitz_constant

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
    g = _correlation(z, A, w)
    on = w != 0
    v_on = (g - lam * torch.sign(w)).abs()
    v_off = torch.relu(g - lam) if nonneg else torch.relu(g.abs() - lam)
    return torch.where(on, v_on, v_off).amax(-1)


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
    mu = lam / 2.0
    r = z - w @ A.T
    ar = r @ A
    worst = ar.amax(-1) if nonneg else ar.abs().amax(-1)
    s = torch.where(worst > mu, mu / worst.clamp_min(1e-300), torch.ones_like(worst))
    theta = s.unsqueeze(-1) * r
    primal = 0.5 * r.pow(2).sum(-1) + mu * w.abs().sum(-1)
    dual = 0.5 * z.pow(2).sum(-1) - 0.5 * (z - theta).pow(2).sum(-1)
    return ((primal - dual) / primal.clamp_min(1e-300)).clamp_min(0.0)


def _pad_supports(mask: torch.Tensor):
    """Indices of the True entries of each row, padded to the longest row.

    Returns ``(idx, valid)``: ``(batch, p)`` long indices (padding points at column 0, so
    gathered padding must be masked with ``valid``) and the ``(batch, p)`` bool mask of real
    entries.
    """
    counts = mask.sum(-1)
    p = int(counts.max()) if mask.numel() else 0
    # stable sort puts True entries first in their original order
    order = torch.argsort((~mask).to(torch.int8), dim=-1, stable=True)[:, :p]
    valid = torch.arange(p, device=mask.device).unsqueeze(0) < counts.unsqueeze(-1)
    return torch.where(valid, order, torch.zeros_like(order)), valid


def _solve_on_support(Gs, cS, valid, signs, mu):
    r"""Batched exact solve of :math:`G_{SS} v_S = c_S - \mu s_S` (Cholesky, padded).

    ``Gs`` is the gathered ``(b, p, p)`` Gram block and ``cS`` the ``(b, p)`` correlations of
    the padded supports; entries outside ``valid`` get an identity row/column and a zero
    right-hand side, so they solve to 0. A tiny ridge rescues the rare singular
    :math:`G_{SS}` (a support larger than the rank).
    """
    vv = valid.unsqueeze(-1) & valid.unsqueeze(-2)
    M = torch.where(vv, Gs, torch.zeros((), dtype=Gs.dtype))
    M = M + torch.diag_embed((~valid).to(Gs.dtype))
    rhs = torch.where(valid, cS - mu * signs, torch.zeros((), dtype=Gs.dtype))
    L, info = torch.linalg.cholesky_ex(M)
    bad = info != 0
    # a ridge a little above rounding, grown until the factorisation succeeds
    scale = max(1e-10, 100 * torch.finfo(M.dtype).eps * M.shape[-1])
    eye = torch.eye(M.shape[-1], dtype=M.dtype, device=M.device)
    while bool(bad.any()):
        Mb = M[bad]
        ridge = scale * Mb.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1.0)
        Lb, info_b = torch.linalg.cholesky_ex(Mb + ridge[:, None, None] * eye)
        L[bad] = Lb
        bad[bad.clone()] = info_b != 0
        scale *= 100
    v = torch.cholesky_solve(rhs.unsqueeze(-1), L).squeeze(-1)
    return torch.where(valid, v, torch.zeros_like(v))


def _sparse_gram_product(w: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """``w @ G`` exploiting the sparsity of the codes (cost ``nnz * c`` instead of ``b * c^2``)."""
    return torch.sparse.mm(w.to_sparse(), G)


def _kkt_from_correlation(g, w, lam, nonneg):
    on = w != 0
    v_off = torch.relu(g - lam) if nonneg else torch.relu(g.abs() - lam)
    return torch.where(on, (g - lam * torch.sign(w)).abs(), v_off).amax(-1)


def _feature_sign_round(G, c, zz, w, g, lam, nonneg, n_cross=8, max_resolve=2, fast=False):
    r"""One batched feature-sign step (Lee et al., 2007) with many atoms entering at once.

    With :math:`g = 2(c - Gw)` (:math:`c = A^\top z`, :math:`G = A^\top A`): the support
    :math:`S` is the current non-zeros plus the entering atoms :math:`|g_j| > \lambda`, with
    signs from :math:`w` or, for entering atoms, from :math:`g`. The exact minimiser
    :math:`v` of the sign-fixed quadratic :math:`\|z - A_S v\|^2 + \lambda s^\top v` is
    computed by Cholesky. Entering atoms whose :math:`v_j` has the wrong sign are dropped and
    :math:`v` recomputed (``max_resolve`` times); after that only the most violating atom
    enters, whose sign is then right (Schur complement), so the direction :math:`v - w`
    descends. The objective is evaluated exactly at :math:`v` and at the first ``n_cross``
    zero crossings on the segment :math:`[w, v]`; the best point is kept if it is better than
    ``w``. ``fast=True`` solves in float32 (early rounds, far from the minimiser);
    the objective is always evaluated in the dtype of ``w``. Returns the new codes.
    """
    mu = lam / 2.0
    viol = (g if nonneg else g.abs()) - lam
    enter = (w == 0) & (viol > 0)
    mask = (w != 0) | enter
    idx, valid = _pad_supports(mask)
    wS = torch.where(valid, w.gather(1, idx), torch.zeros((), dtype=w.dtype))
    gS = g.gather(1, idx)
    entering = (wS == 0) & valid
    sS = torch.ones_like(wS) if nonneg else torch.where(entering, torch.sign(gS), torch.sign(wS))
    sS = torch.where(valid, sS, torch.zeros_like(sS))
    use = valid.clone()
    # the Gram block is gathered once per round; the solves below only change the mask
    Gs = G[idx.unsqueeze(-1), idx.unsqueeze(-2)]
    cS = c.gather(1, idx)
    Gx, cx = (Gs, cS) if not fast else (Gs.to(torch.float32), cS.to(torch.float32))
    for attempt in range(max_resolve + 2):
        vS = _solve_on_support(Gx, cx, use, sS.to(Gx.dtype), mu).to(w.dtype)
        wrong = entering & use & (torch.sign(vS) != sS)
        if not bool(wrong.any()) or attempt == max_resolve + 1:
            break
        rows = wrong.any(-1, keepdim=True)
        if attempt < max_resolve:
            use = use & ~wrong
        else:  # last resort on the offending rows: only the most violating atom enters
            score = torch.where(entering, viol.gather(1, idx), torch.full_like(wS, -math.inf))
            top = torch.zeros_like(use).scatter(1, score.argmax(-1, keepdim=True), True)
            use = torch.where(rows, valid & (~entering | top), use)
    # atoms left out of the solve stay at their current value 0 (they were entering)
    dS = torch.where(use, vS - wS, torch.zeros_like(wS))
    t_cross = torch.where((dS != 0) & use, -wS / dS, torch.full_like(dS, math.inf))
    t_cross = torch.where((t_cross > 0) & (t_cross < 1), t_cross, torch.full_like(dS, math.inf))
    k = min(n_cross, t_cross.shape[1])
    first = t_cross.topk(k, dim=1, largest=False).values
    t = torch.cat([first, torch.ones_like(first[:, :1])], dim=1)  # (b, k + 1)
    t = torch.where(torch.isfinite(t), t, torch.ones_like(t))
    pts = wS.unsqueeze(1) + t.unsqueeze(-1) * dS.unsqueeze(1)  # (b, k + 1, p)
    # snap the crossing coordinate of each candidate to an exact zero
    snap = (t_cross.unsqueeze(1) == t.unsqueeze(-1)) & use.unsqueeze(1)
    pts = torch.where(snap | ~valid.unsqueeze(1), torch.zeros_like(pts), pts)
    if nonneg:
        pts = pts.clamp_min(0.0)
    Gs = torch.where(valid.unsqueeze(-1) & valid.unsqueeze(-2), Gs, torch.zeros((), dtype=Gs.dtype))

    def seed_objective(v):  # ||z - A_S v||^2 + lam ||v||_1 through the Gram matrix
        quad = (v.unsqueeze(-2) @ Gs @ v.unsqueeze(-1)).squeeze(-1).squeeze(-1)
        return zz - 2 * (cS * v).sum(-1) + quad + lam * v.abs().sum(-1)

    F = torch.stack([seed_objective(pts[:, j]) for j in range(pts.shape[1])], dim=1)
    best = F.argmin(-1)
    F_best = F.gather(1, best.unsqueeze(1)).squeeze(1)
    F_now = seed_objective(wS)
    new_S = pts[torch.arange(pts.shape[0]), best]
    # scatter into one spare column that absorbs the padding, then drop it
    spare = torch.where(valid, idx, torch.full_like(idx, w.shape[1]))
    new_w = w.new_zeros(w.shape[0], w.shape[1] + 1).scatter(1, spare, new_S)[:, :-1]
    # near the minimiser the objective changes below its rounding: accept ties within it
    slack = 64 * torch.finfo(F_now.dtype).eps * F_now.abs()
    keep = (F_best <= F_now + slack).unsqueeze(-1)
    return torch.where(keep, new_w, w)


def lasso_active_set(
    z: torch.Tensor,
    A: torch.Tensor,
    lam: float,
    *,
    nonneg: bool = False,
    tol: float = 1e-9,
    warm_iter: int = 100,
    burst_iter: int = 20,
    max_rounds: int = 100,
    chunk_size: int = 500,
    fast_until: float = 1e-2,
    sub_batch: int = 64,
    progress=None,
) -> tuple[torch.Tensor, dict]:
    r"""Fast exact Lasso codes for many signals over ~1,000 atoms (seed scale :math:`F_\lambda`).

    For each chunk of signals:

    1. ``warm_iter`` FISTA iterations in float32 (:func:`deepunfold.solvers.fista`, step
       :math:`1/L`) from zero give an approximate support and signs;
    2. batched feature-sign rounds in float64 (:func:`_feature_sign_round`): on the support
       plus the KKT violators, the sign-fixed quadratic is minimised exactly (batched
       Cholesky of :math:`G_{SS}`, :math:`G = A^\top A`) and a line search over the zero
       crossings keeps the best point, so the objective never increases;
    3. a signal leaves the batch once its KKT violation (:func:`kkt_violation`) is at most
       ``tol * lam``; a signal whose round made no progress gets ``burst_iter`` FISTA
       iterations (float64) from its current point.

    Where the rounds stop with zero violation the support and signs are those of the
    minimiser, so the codes are exact up to the rounding of the Cholesky solve.

    Args:
        z: ``(batch, d)`` signals.
        A: ``(d, c)`` dictionary.
        lam: lambda (seed scale).
        nonneg: constrain codes to be non-negative.
        tol: KKT tolerance relative to lambda.
        warm_iter, burst_iter: FISTA iterations before the first round / on a stall.
        max_rounds: feature-sign rounds per chunk.
        chunk_size: signals solved together (memory about ``chunk * support^2`` doubles).
        fast_until: rounds solve in float32 while the median KKT violation of the batch is
            above ``fast_until * lam``, then in float64.
        sub_batch: signals per feature-sign call, grouped by support size (less padding).
        progress: optional callable ``progress(n_done)`` called after each chunk.

    Returns:
        ``(w, info)`` with the ``(batch, c)`` float64 codes and counters.
    """
    z = z.to(torch.float64)
    A = A.to(torch.float64)
    G = A.T @ A
    A32 = A.to(torch.float32)
    step = 1.0 / lipschitz_constant(A)
    mu = lam / 2.0
    out = torch.zeros(z.shape[0], A.shape[1], dtype=torch.float64)
    info = {"rounds": 0, "float32_rounds": 0, "fista_iter": 0, "stalls": 0, "unconverged": 0}
    for start in range(0, z.shape[0], chunk_size):
        zc = z[start : start + chunk_size]
        res = fista(
            zc.to(torch.float32),
            A32,
            mu,
            step=step,
            max_iter=warm_iter,
            tol=0.0,
            nonneg=nonneg,
            record_history=False,
        )
        w = res.z.to(torch.float64)
        info["fista_iter"] += res.n_iter
        c = zc @ A
        zz = zc.pow(2).sum(-1)
        todo = torch.arange(zc.shape[0])
        for _ in range(max_rounds):
            g = 2.0 * (c[todo] - _sparse_gram_product(w[todo], G))
            viol = _kkt_from_correlation(g, w[todo], lam, nonneg)
            done = viol <= tol * lam
            todo, g, viol = todo[~done], g[~done], viol[~done]
            if todo.numel() == 0:
                break
            info["rounds"] += 1
            w_old = w[todo]
            # far from the minimiser single precision finds the support as well, at half the cost
            fast = float(viol.median()) > fast_until * lam
            info["float32_rounds"] += int(fast)
            # group signals of similar support size: padding to the largest costs p^3 each
            size = (w_old != 0).sum(-1) + ((g if nonneg else g.abs()) > lam).sum(-1)
            order = torch.argsort(size)
            for part in order.split(sub_batch):
                ids = todo[part]
                w[ids] = _feature_sign_round(
                    G, c[ids], zz[ids], w_old[part], g[part], lam, nonneg, fast=fast
                )
            stuck = (w[todo] == w_old).all(-1)
            if bool(stuck.any()):
                ids = todo[stuck]
                res = fista(
                    zc[ids],
                    A,
                    mu,
                    step=step,
                    max_iter=burst_iter,
                    tol=0.0,
                    z0=w[ids],
                    nonneg=nonneg,
                    record_history=False,
                )
                better = objective(zc[ids], A, res.z, lam) < objective(zc[ids], A, w[ids], lam)
                w[ids[better]] = res.z[better]
                info["fista_iter"] += res.n_iter
                info["stalls"] += int(stuck.sum())
        else:
            info["unconverged"] += int(todo.numel())
        out[start : start + chunk_size] = w
        if progress is not None:
            progress(zc.shape[0])
    return out, info


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
    return CodeResult(
        w=w,
        objective=objective(z, A, w, lam),
        kkt=kkt_violation(z, A, w, lam, nonneg),
        gap=duality_gap(z, A, w, lam, nonneg),
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

    from .io import atomic_path

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
