r"""Sparse concept codes of (aligned) embeddings: the Lasso over a concept dictionary.

For each aligned image embedding :math:`z \in \mathbb R^d` and the aligned concept dictionary
:math:`A \in \mathbb R^{d \times c}` (one unit-norm concept per column), the code is

.. math::
    w^\star = \arg\min_w\ F_\lambda(w) = \|z - A w\|_2^2 + \lambda \|w\|_1
    \qquad (\text{optionally } w \ge 0),

in the **scale of seed 001**, the source report task 2 follows (docs/architecture.md, Glossary):
no factor 1/2 on the squared error, so its lambda sweep {0.01, ..., 5} means the same here.
The foundation solvers (:mod:`deepunfold.solvers.proximal_gradient`) minimise
:math:`\tfrac12\|z - Aw\|^2 + \mu\|w\|_1`;
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
* ``"active_set"``: the exact solver, :func:`deepunfold.solvers.lasso.lasso_active_set`
  (batched feature-sign rounds on the Gram matrix, a continuation path near the rank and the
  LARS-Lasso homotopy as a fallback that always gets there; every code is checked against
  the KKT tolerance). The general Lasso code lives in :mod:`deepunfold.solvers.lasso`; its
  names are re-exported here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from deepunfold.solvers.lasso import (
    LassoNotConverged,
    LassoOptions,
    check_lasso_inputs,
    duality_gap,
    kkt_violation,
    lasso_active_set,
    lasso_homotopy,
    objective,
)
from deepunfold.solvers.lasso.certificates import gap_from_residual, kkt_from_correlation
from deepunfold.solvers.proximal_gradient import fista, ista

__all__ = [
    "SOLVERS",
    "CodeResult",
    "objective",
    "kkt_violation",
    "duality_gap",
    "lasso_active_set",
    "lasso_homotopy",
    "LassoNotConverged",
    "sparse_code",
    "codes_to_csr",
    "csr_nbytes",
    "reconstruct",
    "zero_shot_predict",
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
    threads: int | None = None,
    method: str = "auto",
    on_unconverged: str = "raise",
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
        threads: ``active_set`` on the CPU: worker threads (default
            ``torch.get_num_threads()``), see :func:`~deepunfold.solvers.lasso.lasso_active_set`.
        method: ``active_set``: ``"auto"`` (compiled kernels on the CPU, batched rounds on
            other devices), ``"compiled"`` or ``"batched"``.
        on_unconverged: ``active_set``: ``"raise"`` (:class:`LassoNotConverged` if a code is
            above the tolerance) or ``"warn"``.
        progress: optional ``progress(n_done)`` callback.

    The codes are computed on the device of ``z`` and ``A`` (float64) and returned there.
    Invalid input (non-finite values, mismatched shapes, zero-norm atoms, lambda <= 0)
    raises a ``ValueError`` naming the problem.

    Returns:
        :class:`CodeResult` with codes and, per signal, objective, KKT violation and duality gap.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; expected one of {SOLVERS}")
    check_lasso_inputs(z, A, lam)
    lam = float(lam)
    z = z.to(torch.float64)
    A = A.to(torch.float64)
    t0 = time.perf_counter()
    info: dict = {}
    if solver == "active_set":
        w, info = lasso_active_set(
            z,
            A,
            lam,
            nonneg=nonneg,
            options=LassoOptions(tol=tol, chunk_size=chunk_size),
            threads=threads,
            method=method,
            on_unconverged=on_unconverged,
            progress=progress,
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
        w = torch.cat(parts) if parts else A.new_zeros(0, A.shape[1])
    seconds = time.perf_counter() - t0
    # objective, kkt_violation and duality_gap from one residual and one correlation
    r = z - w @ A.T
    ar = r @ A
    return CodeResult(
        w=w,
        objective=r.pow(2).sum(-1) + lam * w.abs().sum(-1),
        kkt=kkt_from_correlation(2.0 * ar, w, lam, nonneg),
        gap=gap_from_residual(z, r, ar, w, lam, nonneg),
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

    from deepunfold.io import atomic_path

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
