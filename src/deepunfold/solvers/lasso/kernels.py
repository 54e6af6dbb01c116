r"""Compiled per-signal Lasso kernels (Numba) of :func:`~deepunfold.solvers.lasso.lasso_active_set`.

Every kernel works in the *half scale* on the Gram matrix: for one signal :math:`x` with
correlations :math:`c = A^\top x` and :math:`G = A^\top A` it minimises :math:`\tfrac12 w^\top
G w - c^\top w + \mu\|w\|_1` over the code :math:`w` (the ``z`` of the package; ``w`` here,
since the kernels name their buffers by it), optionally :math:`w \ge 0`, with :math:`\mu =
\lambda/2` for the full-scale :math:`\lambda` of :mod:`deepunfold.solvers.lasso`
(:func:`kkt_rows` reports in the full scale). The residual correlation :math:`\rho = c -
Gw` satisfies the KKT conditions when :math:`\rho_i = \mu\,\mathrm{sign}(w_i)` on the
support and :math:`|\rho_j| \le \mu` off it (:math:`\rho_j \le \mu` for non-negative
codes).

The support's Gram block :math:`G_{SS} = L L^\top` is held as a lower-triangular factor
:math:`L` (row-major), updated in place:

* ``_factor_append`` adds one atom (a new row of :math:`L`: one triangular solve,
  :math:`O(k^2)`), or refuses it when its column lies in the span of the support
  (:math:`l_{kk}^2 \le 10^{-10} G_{jj}`: an exact duplicate, say);
* ``_factor_delete`` removes one atom (rows moved up, the part above the diagonal rotated
  away by Givens rotations of adjacent columns, :math:`O((k - q)^2)`);
* ``_factor_solve`` solves :math:`G_{SS} x = b` with two triangular solves.

The triangular solves run as dot products over rows of :math:`L` (contiguous memory).
``fastmath`` is limited to re-association and contraction (so dot products vectorise); no
assumption about infinities or NaN is made.

Two solvers use the factor:

* ``_active_set_signal``: a primal active-set (feature-sign) method. Each round computes
  :math:`\rho` once (:math:`O(pk)`), lets the most violating atoms enter with the sign of
  their correlation (as many as the support has, at least ``enter_min``; one after a round
  whose entering atoms all left), and minimises the sign-fixed quadratic on the new support
  exactly. Where the minimiser disagrees with a sign, entering atoms still at zero leave
  together (the point does not move), and otherwise the point moves to the first zero
  crossing on the segment and that atom leaves, so the objective never increases.
* ``_lars_signal``: the LARS-Lasso homotopy (Efron et al. 2004, Lasso modification), which
  reaches the minimiser in finitely many kinks; an atom the factor refuses is kept out (its
  correlation stays tied at the current threshold along the segment) until the next removal.
  It is the fallback for a signal the active set gives up on.

``solve_rows`` returns zero for rows whose correlations are all within the threshold, runs the
active set on the others and the homotopy on those it gave up on. ``kkt_rows`` recomputes
every code's KKT violation from the Gram matrix, for the final check.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_FM = {"reassoc", "contract"}
_EPS = 1e-12  # relative pivot below which an atom counts as in the span of the support

# stats slots filled by solve_rows
ROUNDS, REMOVED, FALLBACK, KINKS = 0, 1, 2, 3


@njit(nogil=True, cache=True, fastmath=_FM)
def _factor_append(G, L, idx, k, j, y):
    """Append atom ``j`` as row ``k`` of ``L`` (``L L^T = G[idx[:k], idx[:k]]``).

    Returns False (and leaves the first ``k`` rows as they were) when the atom is in the
    span of the support. ``y`` is scratch space.
    """
    Lk = L[k]
    for i in range(k):  # L[k, :k] = L^{-1} G[S, j], a dot product per row of L
        Li = L[i]
        v = G[idx[i], j]
        for m in range(i):
            v -= Li[m] * Lk[m]
        Lk[i] = v / Li[i]
    d2 = G[j, j]
    for m in range(k):
        d2 -= Lk[m] * Lk[m]
    if d2 <= _EPS * G[j, j]:
        return False
    Lk[k] = math.sqrt(d2)
    return True


@njit(nogil=True, cache=True, fastmath=_FM)
def _factor_delete(L, k, q):
    """Remove row and column ``q`` of the ``k x k`` factor ``L`` in place (Givens)."""
    for i in range(q, k - 1):  # rows below q move up; they keep one entry above the diagonal
        Li = L[i]
        Ln = L[i + 1]
        for m in range(i + 2):
            Li[m] = Ln[m]
    for i in range(q, k - 1):  # rotate columns (i, i + 1) to clear L[i, i + 1]
        a = L[i, i]
        b = L[i, i + 1]
        r = math.hypot(a, b)
        ct = a / r
        st = b / r
        for m in range(i, k - 1):
            Lm = L[m]
            u = Lm[i]
            v = Lm[i + 1]
            Lm[i] = ct * u + st * v
            Lm[i + 1] = ct * v - st * u
        L[i, i + 1] = 0.0
    Ll = L[k - 1]
    for m in range(k):
        Ll[m] = 0.0


@njit(nogil=True, cache=True, fastmath=_FM)
def _factor_solve(L, k, b, out):
    """``out = (L L^T)^{-1} b`` on the first ``k`` entries (``b`` is left intact)."""
    for i in range(k):  # L y = b: a dot product per row
        Li = L[i]
        v = b[i]
        for m in range(i):
            v -= Li[m] * out[m]
        out[i] = v / Li[i]
    for i in range(k - 1, -1, -1):  # L^T x = y, row-oriented
        Li = L[i]
        xi = out[i] / Li[i]
        out[i] = xi
        for m in range(i):
            out[m] -= Li[m] * xi


@njit(nogil=True, cache=True, fastmath=_FM)
def _gram_columns(G, idx, v, k, out):
    """``out = G[:, S] v`` (the rows of ``G`` are its columns: it is symmetric)."""
    p = out.shape[0]
    for j in range(p):
        out[j] = 0.0
    i = 0
    while i + 4 <= k:  # four rows at a time: a quarter of the passes over ``out``
        v0, v1, v2, v3 = v[i], v[i + 1], v[i + 2], v[i + 3]
        g0, g1, g2, g3 = G[idx[i]], G[idx[i + 1]], G[idx[i + 2]], G[idx[i + 3]]
        for j in range(p):
            out[j] += v0 * g0[j] + v1 * g1[j] + v2 * g2[j] + v3 * g3[j]
        i += 4
    while i < k:
        vi = v[i]
        gi = G[idx[i]]
        for j in range(p):
            out[j] += vi * gi[j]
        i += 1


@njit(nogil=True, cache=True, fastmath=_FM)
def _residual(G, c, idx, wS, k, rho):
    """``rho = c - G[:, S] w_S``."""
    _gram_columns(G, idx, wS, k, rho)
    for j in range(c.shape[0]):
        rho[j] = c[j] - rho[j]


def _workspace(p: int, kmax: int) -> tuple:
    """Buffers of one worker, allocated once per chunk of signals: ``(L, idx, s, wS, x, y, rho,
    a, flag, score, keep, cand)`` (factor, support atoms, signs, coefficients, two scratch
    vectors of the support's size, correlations, direction, atom flags, violations, kept
    atoms, violating atoms)."""
    n = kmax + 1
    f = np.float64
    return (
        np.zeros((n, n)),
        np.zeros(n, np.int64),
        np.zeros(n, f),
        np.zeros(n, f),
        np.zeros(n, f),
        np.zeros(n, f),
        np.zeros(p, f),
        np.zeros(p, f),
        np.zeros(p, np.int8),
        np.zeros(p, f),
        np.zeros(n, np.int64),
        np.zeros(p, np.int64),
    )


@njit(nogil=True, cache=True, fastmath=_FM)
def _drop(R, idx, s, wS, flag, k, q):
    """Atom at position ``q`` leaves the support; returns the new size."""
    flag[idx[q]] = 0
    _factor_delete(R, k, q)
    for i in range(q, k - 1):
        idx[i] = idx[i + 1]
        s[i] = s[i + 1]
        wS[i] = wS[i + 1]
    return k - 1


@njit(nogil=True, cache=True, fastmath=_FM)
def _pivot(G, L, idx, s, wS, flag, k, j, rho, nonneg, x, y):
    r"""Swap the violating atom ``j``, which lies (nearly) in the span of the support, in for
    the first support atom to reach zero; returns False if no swap helps.

    With :math:`a_j = A_S \alpha` (:math:`\alpha = G_{SS}^{-1} G_{Sj}`), moving
    :math:`w_j = \sigma t`, :math:`w_S = w_S - \sigma t \alpha` keeps :math:`Aw` (nearly)
    fixed and changes the penalty at the rate :math:`1 - \sigma s^\top\alpha`, which is
    :math:`1 - |\rho_j| / \mu < 0` for a violator (:math:`\sigma = \mathrm{sign}\,\rho_j`);
    the step ends where the first support coefficient reaches zero, and that atom leaves.
    """
    if k == 0:
        return False
    Lk = L[k]  # L^{-1} G[S, j] (written by the refused append); alpha = L^{-T} of it
    for i in range(k):
        Li = L[i]
        v = G[idx[i], j]
        for m in range(i):
            v -= Li[m] * Lk[m]
        Lk[i] = v / Li[i]
    for i in range(k):
        x[i] = Lk[i]
    for i in range(k - 1, -1, -1):
        Li = L[i]
        xi = x[i] / Li[i]
        x[i] = xi
        for m in range(i):
            x[m] -= Li[m] * xi
    sigma = 1.0 if (nonneg or rho[j] > 0.0) else -1.0
    t_min = np.inf
    q = -1
    for i in range(k):
        step = sigma * x[i]
        if step * wS[i] > 0.0:  # this coefficient moves towards zero
            t = wS[i] / step
            if t < t_min:
                t_min, q = t, i
    if q < 0:
        return False
    for i in range(k):
        wS[i] -= t_min * sigma * x[i]
    wS[q] = 0.0
    k = _drop(L, idx, s, wS, flag, k, q)
    if not _factor_append(G, L, idx, k, j, y):
        return False
    idx[k] = j
    s[k] = sigma
    wS[k] = sigma * t_min
    flag[j] = 1
    return True


@njit(nogil=True, cache=True, fastmath=_FM)
def _active_set_signal(
    G, c, mu, nonneg, tol, floor, max_rounds, enter_min, growth, warm, w, ws, stats
):
    """Active-set solve of one signal into ``w`` (from ``w``'s support if ``warm``, else from
    zero); returns the rounds, or -1 if it gave up (``w`` then holds no solution).

    Converged: every violation at most ``max(tol * mu, floor[0] + floor[1] * ||w||_1)``, the
    second term the rounding bound of the correlations (see ``solve_rows``)."""
    R, idx, s, wS, x, y, rho, _, flag, score, keep, cand = ws
    p = c.shape[0]
    kmax = R.shape[0] - 1
    k = 0
    for j in range(p):
        flag[j] = 0
    if warm:  # start from the support and signs of ``w`` (atoms the factor refuses are left out)
        for j in range(p):
            if w[j] != 0.0 and k < kmax and _factor_append(G, R, idx, k, j, y):
                idx[k] = j
                s[k] = 1.0 if w[j] > 0.0 else -1.0
                wS[k] = w[j]
                flag[j] = 1
                k += 1
    for j in range(p):
        w[j] = 0.0
    k0 = k
    single = False
    for rnd in range(max_rounds):
        # minimise the sign-fixed quadratic on the support; entering atoms are idx[k0:k]
        n_new = k - k0
        while k > 0:
            for i in range(k):
                y[i] = c[idx[i]] - mu * s[i]
            _factor_solve(R, k, y, x)
            # entering atoms the minimiser wants with the other sign leave at once, from the
            # last (cheapest to delete) down; the point does not move
            n_out = 0
            for i in range(k0, k):
                if wS[i] == 0.0 and x[i] * s[i] <= 0.0:
                    n_out += 1
            if n_out > 0:
                stats[REMOVED] += n_out
                if 2 * n_out >= k - k0 - n_out:
                    # most of them: cut the factor back to the old support and append the rest
                    n_keep = 0
                    for i in range(k0, k):
                        if wS[i] == 0.0 and x[i] * s[i] <= 0.0:
                            flag[idx[i]] = 0
                        else:
                            keep[n_keep] = idx[i]
                            x[n_keep] = s[i]
                            n_keep += 1
                    k = k0
                    for t in range(n_keep):
                        j = keep[t]
                        if _factor_append(G, R, idx, k, j, y):
                            idx[k] = j
                            s[k] = x[t]
                            wS[k] = 0.0
                            k += 1
                        else:
                            flag[j] = 0
                else:
                    for i in range(k - 1, k0 - 1, -1):
                        if wS[i] == 0.0 and x[i] * s[i] <= 0.0:
                            k = _drop(R, idx, s, wS, flag, k, i)
                continue
            t_min = 1.0
            q = -1
            for i in range(k):
                if x[i] * s[i] <= 0.0:
                    den = wS[i] - x[i]
                    t = wS[i] / den if den != 0.0 else 0.0
                    if t < t_min:
                        t_min = t
                        q = i
            if q < 0:
                for i in range(k):
                    wS[i] = x[i]
                break
            for i in range(k):
                wS[i] += t_min * (x[i] - wS[i])
            wS[q] = 0.0
            if q < k0:
                k0 -= 1
            k = _drop(R, idx, s, wS, flag, k, q)
            stats[REMOVED] += 1
        kept = k - k0
        single = n_new > 0 and kept == 0
        _residual(G, c, idx, wS, k, rho)
        worst = 0.0
        for j in range(p):
            if flag[j] == 1:
                score[j] = -1.0
            else:
                v = (rho[j] if nonneg else abs(rho[j])) - mu
                score[j] = v
                if v > worst:
                    worst = v
        l1 = 0.0
        for i in range(k):
            l1 += abs(wS[i])
        thr = max(tol * mu, floor[0] + floor[1] * l1)
        if worst <= thr:
            for i in range(k):
                w[idx[i]] = wS[i]
            stats[ROUNDS] += rnd + 1
            return rnd + 1
        m = 1 if single else max(enter_min, int(growth * k))
        # the violators, strongest first: sorting only them (not all p atoms) is what keeps a
        # round O(p) when supports are small
        nv = 0
        for j in range(p):
            if score[j] > thr:
                cand[nv] = j
                nv += 1
        order = cand[:nv][np.argsort(-score[cand[:nv]])]
        k0 = k
        refused = -1
        for t in range(nv):
            if k - k0 >= m:
                break
            j = order[t]
            if k < kmax and _factor_append(G, R, idx, k, j, y):
                idx[k] = j
                s[k] = 1.0 if (nonneg or rho[j] > 0.0) else -1.0
                wS[k] = 0.0
                flag[j] = 1
                k += 1
            elif refused < 0:
                refused = j
        if k == k0:  # every violator is in the span of the support: swap one in
            if refused < 0 or not _pivot(G, R, idx, s, wS, flag, k, refused, rho, nonneg, x, y):
                stats[ROUNDS] += rnd + 1
                return -1
            stats[REMOVED] += 1
            k0 = k  # the swapped-in atom is not at zero: no entering atoms this round
    stats[ROUNDS] += max_rounds
    return -1


@njit(nogil=True, cache=True, fastmath=_FM)
def _lars_signal(G, c, mu, nonneg, max_steps, w, ws, stats):
    """LARS-Lasso homotopy of one signal into ``w``; returns the number of kinks."""
    R, idx, s, wS, u, y, rho, a, flag, _, _, _ = ws
    p = c.shape[0]
    kmax = R.shape[0] - 1
    for j in range(p):
        rho[j] = c[j]
        w[j] = 0.0
        flag[j] = 0  # 0 free, 1 active, 2 kept out (in the span of the support)
    lam = -1.0
    best = 0
    for j in range(p):
        v = rho[j] if nonneg else abs(rho[j])
        if v > lam:
            lam, best = v, j
    if lam <= mu:
        return 0
    k = 0
    barred = -1
    steps = 0
    enter, sign = best, (1.0 if (nonneg or rho[best] > 0.0) else -1.0)
    while True:
        if enter >= 0:
            if k < kmax and _factor_append(G, R, idx, k, enter, y):
                idx[k] = enter
                s[k] = sign
                wS[k] = 0.0
                flag[enter] = 1
                k += 1
            else:
                flag[enter] = 2
        if steps >= max_steps or k == 0:
            break
        steps += 1
        _factor_solve(R, k, s, u)  # d w_S / d(-lam)
        _gram_columns(G, idx, u, k, a)  # d(rho) / d(-lam) = -a
        d = lam - mu
        kind = 0
        arg = -1
        sign = 1.0
        for j in range(p):
            if flag[j] != 0 or j == barred:
                continue
            aj = a[j]
            if 1.0 - aj > 1e-12:
                t = max((lam - rho[j]) / (1.0 - aj), 0.0)
                if t < d:
                    d, kind, arg, sign = t, 1, j, 1.0
            if not nonneg and 1.0 + aj > 1e-12:
                t = max((lam + rho[j]) / (1.0 + aj), 0.0)
                if t < d:
                    d, kind, arg, sign = t, 1, j, -1.0
        for i in range(k):
            if wS[i] * u[i] < 0.0:
                t = -wS[i] / u[i]
                if t < d:
                    d, kind, arg = t, 2, i
        for i in range(k):
            wS[i] += d * u[i]
        for j in range(p):
            rho[j] -= d * a[j]
        lam -= d
        if kind == 0:
            break
        if kind == 2:
            gone = idx[arg]
            wS[arg] = 0.0
            k = _drop(R, idx, s, wS, flag, k, arg)
            for j in range(p):
                if flag[j] == 2:
                    flag[j] = 0
            barred = gone
            enter = -1
            if k == 0:  # all left: restart from the largest correlation
                lam2 = -1.0
                for j in range(p):
                    v = rho[j] if nonneg else abs(rho[j])
                    if v > lam2 and j != gone:
                        lam2, best = v, j
                enter, sign = best, (1.0 if (nonneg or rho[best] > 0.0) else -1.0)
        else:
            barred = -1
            enter = arg
    # the coefficients once more from the support and signs (no drift along the path)
    for i in range(k):
        y[i] = c[idx[i]] - mu * s[i]
    _factor_solve(R, k, y, u)
    ok = True
    for i in range(k):
        if u[i] * s[i] <= 0.0:
            ok = False
    for i in range(k):
        w[idx[i]] = u[i] if ok else wS[i]
    stats[KINKS] += steps
    return steps


@njit(nogil=True, cache=True)
def _solve_rows(
    G,
    C,
    mu,
    nonneg,
    tol,
    floors,
    max_rounds,
    polish_rounds,
    enter_min,
    growth,
    max_steps,
    W,
    ws,
    stats,
):
    keep_w = ws[7]  # the homotopy's code while the polish runs (the buffer ``a``)
    for r in range(C.shape[0]):
        top = 0.0
        for j in range(C.shape[1]):
            v = C[r, j] if nonneg else abs(C[r, j])
            if v > top:
                top = v
        if top <= mu:  # the code is zero (every correlation within the threshold)
            W[r] = 0.0
            continue
        if (
            _active_set_signal(
                G,
                C[r],
                mu,
                nonneg,
                tol,
                floors[r],
                max_rounds,
                enter_min,
                growth,
                False,
                W[r],
                ws,
                stats,
            )
            >= 0
        ):
            continue
        stats[FALLBACK] += 1
        _lars_signal(G, C[r], mu, nonneg, max_steps, W[r], ws, stats)
        # polish the path's code (it keeps nearly dependent atoms out of its factor); if the
        # polish gives up too, the path's code stands and the caller's check decides
        keep_w[:] = W[r]
        if (
            _active_set_signal(
                G,
                C[r],
                mu,
                nonneg,
                tol,
                floors[r],
                polish_rounds,
                enter_min,
                growth,
                True,
                W[r],
                ws,
                stats,
            )
            < 0
        ):
            W[r] = keep_w


def solve_rows(
    G: np.ndarray,
    C: np.ndarray,
    mu: float,
    *,
    nonneg: bool,
    tol: float,
    floors: np.ndarray | None = None,
    max_rounds: int,
    polish_rounds: int = 50,
    enter_min: int,
    growth: float = 0.25,
    max_steps: int,
    kmax: int,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Codes of every row of ``C`` (correlations ``A^T z``, float64) over the Gram ``G``.

    Each row: the active set from zero for at most ``max_rounds`` rounds; if it gives up, the
    homotopy, then the active set from the homotopy's code for at most ``polish_rounds``.
    ``kmax`` bounds the support (the rank of ``A`` at most). ``floors`` (``(rows, 2)``, default
    zeros): a row is converged once every violation is at most ``max(tol * mu, floors[r, 0] +
    floors[r, 1] * ||w||_1)``, the rounding bound of its correlations (tiny lambdas, where
    ``tol * mu`` is below what float64 can resolve). Returns ``(W, stats)`` with
    ``stats[ROUNDS]`` active-set rounds, ``stats[REMOVED]`` atoms that left,
    ``stats[FALLBACK]`` signals solved by the homotopy and ``stats[KINKS]`` its kinks.
    ``out``: a C-contiguous float64 array of ``C``'s shape to write ``W`` into (every element
    is written).
    """
    G, C, ws, W, stats = _prepare(G, C, kmax, out)
    if floors is None:
        floors = np.zeros((C.shape[0], 2))
    floors = np.ascontiguousarray(floors, dtype=np.float64)
    _solve_rows(
        G,
        C,
        float(mu),
        bool(nonneg),
        float(tol),
        floors,
        int(max_rounds),
        int(polish_rounds),
        int(enter_min),
        float(growth),
        int(max_steps),
        W,
        ws,
        stats,
    )
    return W, stats


def lars_rows(
    G: np.ndarray, C: np.ndarray, mu: float, *, nonneg: bool, max_steps: int, kmax: int
) -> tuple[np.ndarray, np.ndarray]:
    """The homotopy alone on every row of ``C`` (the reference path; see ``solve_rows``)."""
    G, C, ws, W, stats = _prepare(G, C, kmax)
    for r in range(C.shape[0]):
        _lars_signal(G, C[r], float(mu), bool(nonneg), int(max_steps), W[r], ws, stats)
    return W, stats


@njit(nogil=True, cache=True, fastmath=_FM)
def _kkt_rows(G, C, W, mu, nonneg, out, l1, idx, vals, rho):
    for r in range(C.shape[0]):
        w = W[r]
        c = C[r]
        k = 0
        norm = 0.0
        for j in range(w.shape[0]):
            if w[j] != 0.0:
                idx[k] = j
                vals[k] = w[j]
                norm += abs(w[j])
                k += 1
        l1[r] = norm
        _gram_columns(G, idx, vals, k, rho)
        worst = 0.0
        for j in range(w.shape[0]):
            g = c[j] - rho[j]
            if w[j] > 0.0:
                v = abs(g - mu)
            elif w[j] < 0.0:
                v = abs(g + mu)
            else:
                v = (g if nonneg else abs(g)) - mu
            if v > worst:
                worst = v
        out[r] = 2.0 * worst


def kkt_rows(
    G: np.ndarray, C: np.ndarray, W: np.ndarray, mu: float, *, nonneg: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``(violation, l1)``: the largest KKT violation of every row of ``W`` in the full scale
    (``2 mu = lambda``) and the row's l1 norm. The violation is
    recomputed from ``G``, ``C`` and the codes alone: on the support ``|g_j - lambda
    sign(w_j)|``, off it ``max(|g_j| - lambda, 0)`` (``max(g_j - lambda, 0)`` if
    ``nonneg``), ``g = 2 (C - W G)`` formed row by row from the non-zeros (``O(nnz p)``, no
    dense temporaries)."""
    G = np.ascontiguousarray(G, dtype=np.float64)
    C = np.ascontiguousarray(C, dtype=np.float64)
    W = np.ascontiguousarray(W, dtype=np.float64)
    p = G.shape[0]
    out, l1 = np.zeros(C.shape[0]), np.zeros(C.shape[0])
    _kkt_rows(
        G, C, W, float(mu), bool(nonneg), out, l1, np.zeros(p, np.int64), np.zeros(p), np.zeros(p)
    )
    return out, l1


def _prepare(G, C, kmax, out=None):
    G = np.ascontiguousarray(G, dtype=np.float64)
    C = np.ascontiguousarray(C, dtype=np.float64)
    ws = _workspace(G.shape[0], min(kmax, G.shape[0]))
    if out is None:
        out = np.zeros_like(C)
    elif out.shape != C.shape or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float64 array of shape {C.shape}")
    return G, C, ws, out, np.zeros(4, dtype=np.int64)
