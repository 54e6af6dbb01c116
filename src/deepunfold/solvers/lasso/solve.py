r"""The entry of the exact Lasso: checks, the zero screen, chunks on threads, the final check.

:func:`lasso_active_set` checks its arguments, screens the signals whose code is zero,
splits the others into chunks solved by the compiled kernels (:mod:`.kernels`, the CPU) or
the batched engine (:mod:`.batched`, other devices), on worker threads on the CPU, and
checks every code against the KKT tolerance (:mod:`.certificates`). :func:`lasso_homotopy` is
the LARS-Lasso path of one signal.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

import deepunfold.solvers.lasso.batched as batched
from deepunfold.solvers.lasso.certificates import (
    kkt_from_correlation,
    rounding_bound,
    rounding_factors,
)
from deepunfold.solvers.lasso.options import (
    LassoOptions,
    check_int,
    check_lambda,
    check_lasso_inputs,
)
from deepunfold.solvers.lasso.problem import Problem

__all__ = ["LassoNotConverged", "lasso_active_set", "lasso_homotopy"]

METHODS = ("auto", "compiled", "batched")


class LassoNotConverged(RuntimeError):
    """Some codes are above the KKT tolerance after every step the solver allows."""


def kkt_check(prob: Problem, c, z) -> tuple[torch.Tensor, torch.Tensor]:
    """``(violation, l1 norm)`` of every code, the violation recomputed from ``c``, the Gram
    matrix and the codes alone (not from a solver's state): by a compiled row-by-row kernel
    on the CPU, by a sparse product on other devices."""
    if z.device.type == "cpu":
        import deepunfold.solvers.lasso.kernels as kernels

        mu = prob.lam / 2.0
        viol, l1 = kernels.kkt_rows(
            prob.G64, c.detach().numpy(), z.detach().numpy(), mu, nonneg=prob.nonneg
        )
        return torch.from_numpy(viol), torch.from_numpy(l1)
    g = 2.0 * (c - batched.sparse_gram_product(z, prob.G))
    return kkt_from_correlation(g, z, prob.lam, prob.nonneg), z.abs().sum(-1)


def _solve_chunk_compiled(prob: Problem, xc, c, info, out) -> None:
    """:func:`lasso_active_set` on one chunk ``xc`` by the compiled per-signal kernels (CPU),
    codes written into ``out`` (every element)."""
    import deepunfold.solvers.lasso.kernels as kernels

    o = prob.opts
    gam, amax = rounding_factors(prob.A)
    xnorm = torch.linalg.vector_norm(xc, dim=-1).numpy()
    floors = np.stack([gam * amax * xnorm, np.full_like(xnorm, gam * amax * amax)], axis=1)
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


def lasso_homotopy(
    G: np.ndarray, c: np.ndarray, lam: float, *, nonneg: bool = False, max_steps: int | None = None
) -> np.ndarray:
    r"""Exact Lasso code of one signal by the homotopy (LARS-Lasso) path on the Gram matrix.

    Minimises :math:`z^\top G z - 2c^\top z + \lambda\|z\|_1` (:math:`G = A^\top A`, :math:`c =
    A^\top x`: :func:`~deepunfold.solvers.lasso.objective` up to the constant :math:`\|x\|^2`),
    optionally with :math:`z \ge 0`. Following Efron et al. (2004) with the Lasso modification,
    the path starts at :math:`z = 0`, :math:`\mu = \max_j |c_j|` and lowers the half-scale
    threshold :math:`\mu` to :math:`\lambda/2`: on the active set :math:`S` with signs
    :math:`s`, :math:`z_S(\mu) = G_{SS}^{-1}(c_S - \mu s)` is linear in :math:`\mu`, and the
    next kink is the first atom whose correlation :math:`|c_j - G_j z|` reaches :math:`\mu` (it
    enters) or the first active coefficient that reaches zero (it leaves). :math:`G_{SS}` is
    held as a Cholesky factor with one row added per entering atom and one removed (Givens
    rotations) per leaving atom. An atom whose column would make :math:`G_{SS}` singular (it
    lies in the span of the active ones: an exact duplicate, say) is kept out; its correlation
    then stays tied at :math:`\mu` along the segment, so the conditions hold for it, and it is
    considered again after the next removal. The final coefficients are solved once more on the
    support. Compiled (:mod:`deepunfold.solvers.lasso.kernels`).

    Args:
        G: ``(c, c)`` Gram matrix (float64).
        c: ``(c,)`` correlations :math:`A^\top x`.
        lam: lambda (full scale), finite and > 0.
        nonneg: non-negative codes.
        max_steps: kinks at most (default ``10 * c + 100``); an integer >= 0.

    Returns:
        ``(c,)`` float64 code.
    """
    import deepunfold.solvers.lasso.kernels as kernels

    lam = check_lambda(lam)
    if max_steps is not None:
        max_steps = check_int("max_steps", max_steps)
    G = np.asarray(G, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1]:
        raise ValueError(f"the Gram matrix G must be square, got shape {G.shape}")
    if c.shape != (G.shape[0],):
        raise ValueError(f"the correlations c must have shape ({G.shape[0]},), got {c.shape}")
    if not (np.isfinite(G).all() and np.isfinite(c).all()):
        raise ValueError("G and c must be finite (no NaN or inf)")
    n = G.shape[0]
    W, _ = kernels.lars_rows(
        G,
        c[None],
        lam / 2.0,
        nonneg=nonneg,
        max_steps=max_steps or 10 * n + 100,
        kmax=n,
    )
    return W[0]


def lasso_active_set(
    x: torch.Tensor,
    A: torch.Tensor,
    lam: float,
    *,
    nonneg: bool = False,
    options: LassoOptions | None = None,
    method: str = "auto",
    threads: int | None = None,
    on_unconverged: str = "raise",
    progress: Callable[[int], object] | None = None,
) -> tuple[torch.Tensor, dict]:
    r"""Exact Lasso codes :math:`\arg\min_z \|x - Az\|^2 + \lambda\|z\|_1` for every row of ``x``.

    The full scale, no 1/2 on the squared error (:mod:`deepunfold.solvers.lasso`). Two
    implementations of the same active-set method, chosen by ``method``:

    * ``"compiled"`` (the CPU default): each signal is solved on its own by compiled kernels
      (:mod:`deepunfold.solvers.lasso.kernels`) holding the support's Cholesky factor,
      updated by one row per entering atom and Givens rotations per leaving atom. A round
      computes the correlations once, lets the most violating atoms enter (at least
      ``options.enter_bulk``, at most ``max(enter_bulk, enter_growth * support)``; one after
      a round whose entering atoms all left) and minimises the sign-fixed quadratic on the
      support exactly, stepping to the first zero crossing where a sign disagrees, so the
      objective never increases. A signal still above ``tol`` after ``max_rounds`` rounds,
      or whose violators all lie in the span of its support, is solved by the LARS homotopy
      (:func:`lasso_homotopy`) and polished by the active set from that code.
    * ``"batched"`` (the default on other devices): feature-sign rounds over batches of
      signals of similar support with batched Cholesky solves (torch, any device;
      :mod:`deepunfold.solvers.lasso.batched`): a warm start, rounds on the support plus the
      KKT violators, a continuation path (decreasing lambdas from zero) for supports near
      the rank of ``A``, and the homotopy for signals that stall or run out of rounds. The
      options marked *batched* in :class:`LassoOptions` tune it.

    A signal is done once its KKT violation (:func:`~deepunfold.solvers.lasso.kkt_violation`)
    is at most ``options.tol * lam``.

    Args:
        x: ``(batch, d)`` signals.
        A: ``(d, c)`` dictionary, atoms as columns (no zero-norm atom).
        lam: lambda (full scale), finite and > 0.
        nonneg: constrain the codes to be non-negative.
        options: the tuning, :class:`LassoOptions` (default: ``LassoOptions()``).
        method: ``"auto"`` (``"compiled"`` on the CPU, ``"batched"`` elsewhere),
            ``"compiled"`` (CPU tensors only) or ``"batched"``.
        threads: CPU worker threads, each solving whole chunks with one BLAS thread; an
            integer >= 1 (default ``torch.get_num_threads()``); ignored on a GPU.
        on_unconverged: ``"raise"`` (default): :class:`LassoNotConverged` if any code is
            above the tolerance at the end; ``"warn"``: a warning, and the counts in ``info``.
        progress: optional callable ``progress(n_done)`` called after each chunk.

    Invalid arguments (non-finite values, mismatched shapes, zero-norm atoms, lambda <= 0, an
    unknown method, threads < 1, ...) raise a ``ValueError`` naming the argument.

    Returns:
        ``(z, info)`` with the ``(batch, c)`` float64 codes and counters: ``zero`` (signals
        whose code is zero from the start), ``rounds`` (feature-sign rounds, summed over
        chunks; compiled path: over signals), ``removed`` (compiled path: atoms that left a
        support), ``fista_iter`` (warm-start iterations), ``stalls`` (rounds without progress),
        ``continuation`` (signals that took the continuation path), ``stages``, ``restarts``,
        ``homotopy`` (signals solved by the fallback), ``unconverged`` (signals above the
        tolerance at the end), ``rounding_limited`` (signals whose tolerance was raised to
        the rounding bound of :func:`~deepunfold.solvers.lasso.kkt_rounding_bound`, above
        ``tol * lam``: tiny lambdas) and ``max_kkt`` (largest violation, units of lambda).
    """
    check_lasso_inputs(x, A, lam)
    lam = check_lambda(lam)
    if not isinstance(nonneg, (bool, np.bool_)):
        raise ValueError(f"nonneg must be True or False, got {nonneg!r}")
    nonneg = bool(nonneg)
    if options is None:
        options = LassoOptions()
    elif not isinstance(options, LassoOptions):
        raise ValueError(f"options must be a LassoOptions, got {type(options).__name__}")
    opts = options
    if method not in METHODS:
        raise ValueError(f"method must be 'auto', 'compiled' or 'batched', got {method!r}")
    if method == "compiled" and x.device.type != "cpu":
        raise ValueError(f"method='compiled' runs on the CPU; the signals are on {x.device}")
    if threads is not None:
        threads = check_int("threads", threads, low=1)
    if on_unconverged not in ("raise", "warn"):
        raise ValueError(f"on_unconverged must be 'raise' or 'warn', got {on_unconverged!r}")
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be callable or None, got {progress!r}")
    x = x.to(torch.float64)
    A = A.to(torch.float64)
    cpu = x.device.type == "cpu"
    threads = (torch.get_num_threads() if threads is None else threads) if cpu else 1
    compiled = method == "compiled" or (method == "auto" and cpu)
    info = dict.fromkeys(_COUNTERS, 0)
    with _one_blas_thread(cpu):
        live = _maybe_nonzero(x, A, lam, nonneg)
        every = live.numel() == x.shape[0]
        c = (x if every else x[live]) @ A
        top = c.amax(-1) if nonneg else torch.maximum(c.amax(-1), -c.amin(-1))
        nonzero = 2.0 * top > lam
        info["zero"] = x.shape[0] - int(nonzero.sum())
        # the compiled kernels return a zero code after one O(p) pass: leaving those rows out
        # (copies of x, c and the codes) pays only where most codes are zero
        if not (compiled and every and 2 * info["zero"] < x.shape[0]):
            live, c = live[nonzero], c[nonzero]
            every = live.numel() == x.shape[0]
            if progress is not None and info["zero"]:
                progress(info["zero"])
        kkt = x.new_zeros(x.shape[0])  # zero codes: max(|2 a_j^T x| - lam, 0) = 0
        l1 = x.new_zeros(x.shape[0])
        if not live.numel():
            z = x.new_zeros(x.shape[0], A.shape[1])
        else:
            prob = Problem(A, lam, nonneg, opts)
            solve = _solve_chunk_compiled if compiled else batched.solve_chunk
            zl = _run_chunks(
                prob, x if every else x[live], c, opts.chunk_size, threads, progress, info, solve
            )
            z = zl if every else x.new_zeros(x.shape[0], A.shape[1]).index_copy_(0, live, zl)
            # the check, from the Gram matrix (no second pass over the signals)
            kkt[live], l1[live] = kkt_check(prob, c, zl)
    # below tol * lam the float64 correlations cannot be resolved for tiny lambdas: the check
    # then allows their rounding bound (kkt_rounding_bound)
    bound = rounding_bound(x, A, l1)
    info["rounding_limited"] = int((bound > opts.tol * lam).sum())
    bad = kkt > torch.clamp(bound, min=opts.tol * lam)
    info["unconverged"] = int(bad.sum())
    info["max_kkt"] = float(kkt.max() / lam) if kkt.numel() else 0.0
    if info["unconverged"]:
        msg = (
            f"Lasso: {info['unconverged']} of {x.shape[0]} codes above the KKT tolerance "
            f"{opts.tol:g} lambda after the homotopy fallback "
            f"(largest {info['max_kkt']:.2e} lambda)"
        )
        if on_unconverged == "raise":
            raise LassoNotConverged(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
    return z, info


def _maybe_nonzero(x, A, lam, nonneg) -> torch.Tensor:
    r"""Indices of the signals whose code may be non-zero, by a float32 screen.

    The code of :math:`x` is zero iff :math:`\max_j |2a_j^\top x| \le \lambda`. The
    float32 product (twice as fast as float64) is off by at most :math:`(\gamma_d + 3u)
    \|x\|\|a_j\|` (:math:`u = 2^{-24}`, :math:`\gamma_d = du/(1 - du)`: rounding of the
    inputs and of a length-:math:`d` dot product), so signals below lambda by that margin
    have zero codes for certain; the others are checked exactly in float64.
    """
    d = x.shape[1]
    u = 2.0**-24
    if d * u >= 0.1:  # no useful bound
        return torch.arange(x.shape[0], device=x.device)
    A32 = A.to(torch.float32)
    bound = (d * u / (1 - d * u) + 3 * u) * 1.01
    a_max = float(A.norm(dim=0).max())

    def maybe(xs):
        c32 = xs.to(torch.float32) @ A32
        score = (2.0 * c32 if nonneg else 2.0 * c32.abs()).amax(-1).double()
        margin = 2.0 * bound * torch.linalg.vector_norm(xs, dim=-1) * a_max
        return score + margin > lam

    # the screen costs a float32 product of every signal: only where it removes many
    n_probe = min(256, x.shape[0])
    if float(maybe(x[:n_probe]).double().mean()) > 0.5:
        return torch.arange(x.shape[0], device=x.device)
    return torch.nonzero(maybe(x)).squeeze(-1)


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


def _run_chunks(prob, x, c, chunk_size, threads, progress, info, solve_chunk) -> torch.Tensor:
    """Solve the signals in chunks, on ``threads`` worker threads when above one; each chunk
    writes its rows of one output (no per-chunk copies to concatenate)."""
    n = x.shape[0]
    out = c.new_empty(n, c.shape[1])  # every row is written by its chunk
    if threads > 1:  # at least two chunks per thread, so the threads finish together
        chunk_size = max(8, min(chunk_size, -(-n // (2 * threads))))
    starts = range(0, n, chunk_size)
    lock = threading.Lock()

    def solve(start):
        part = dict.fromkeys(_COUNTERS, 0)
        sl = slice(start, start + chunk_size)
        solve_chunk(prob, x[sl], c[sl], part, out[sl])
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
