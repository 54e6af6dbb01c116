r"""Mutual coherence, the uniqueness/recovery bound it gives, and a support-recovery study.

For a dictionary :math:`D = [d_1, \dots, d_m] \in \mathbb R^{n \times m}`,

.. math::
    \mu(D) = \max_{i \ne j} \frac{|d_i^\top d_j|}{\|d_i\|_2 \, \|d_j\|_2} .

If :math:`y = D x` with :math:`\|x\|_0 < \tfrac12\,(1 + 1/\mu(D))`, then :math:`x` is the
sparsest representation of :math:`y`, and both basis pursuit (the :math:`\ell_1` relaxation)
and orthogonal matching pursuit recover it, support included (Donoho & Elad 2003; Tropp
2004). The bound is sufficient, not necessary: in practice recovery holds well beyond it.

Dictionaries of the experiment (all column-normalised, :math:`n` the signal dimension):

* ``gaussian``: i.i.d. :math:`\mathcal N(0, 1)` entries, :math:`n \times m`;
* ``identity_dct``: :math:`[I, C^\top]` with :math:`C` the orthonormal DCT-II. Its coherence
  is :math:`\max_{k \ge 1, j} |C_{kj}| = \sqrt{2/n}\,\max|\cos(\pi (2j+1) k / 2n)|`, which is
  exactly :math:`\sqrt{2/n}` whenever :math:`n` has an odd factor, and
  :math:`\sqrt{2/n}\cos(\pi/2n)` (within :math:`\pi^2/8n^2` of it) when :math:`n` is a power
  of two;
* ``identity_hadamard``: :math:`[I, H/\sqrt n]` with :math:`H` the Sylvester Hadamard matrix
  (:math:`n` a power of two); coherence exactly :math:`1/\sqrt n`, the smallest a union of two
  orthobases can have.

Basis pursuit (:math:`\min \|x\|_1` s.t. :math:`Dx = y`) is solved here as the Lasso
:math:`\min_x \tfrac12\|y - Dx\|^2 + \lambda\|x\|_1` with a small :math:`\lambda` by
:func:`deepunfold.solvers.proximal_gradient.fista` run to convergence.
As :math:`\lambda \to 0` the Lasso
solution tends to the BP solution; for :math:`\lambda > 0` it may carry extra entries of size
:math:`O(\lambda)` where BP is exact but the Lasso's irrepresentable condition fails, so the
support is read with a relative threshold well above :math:`\lambda` and well below the
smallest true magnitude. Below the coherence bound the Lasso has exactly the true support for
every :math:`\lambda` below the smallest magnitude (Fuchs 2004), so no threshold is needed
there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from deepunfold.data.sparse_signals import normalize_columns, sparse_codes
from deepunfold.solvers.proximal_gradient import fista

__all__ = [
    "DICTIONARIES",
    "mutual_coherence",
    "coherence_bound",
    "dct_matrix",
    "hadamard_matrix",
    "make_dictionary",
    "support_of",
    "recovery_experiment",
]

DICTIONARIES = ("gaussian", "identity_dct", "identity_hadamard")


def mutual_coherence(D: torch.Tensor) -> float:
    r"""Mutual coherence :math:`\max_{i \ne j} |d_i^\top d_j| / (\|d_i\| \|d_j\|)`.

    Args:
        D: ``(n, m)`` dictionary with ``m >= 2`` columns (normalised here, not in place).
    """
    if D.ndim != 2 or D.shape[1] < 2:
        raise ValueError(f"need an (n, m) dictionary with m >= 2, got shape {tuple(D.shape)}")
    Dn = normalize_columns(D)
    gram = (Dn.T @ Dn).abs()
    gram.fill_diagonal_(0.0)
    return float(gram.max())


def coherence_bound(mu: float) -> float:
    r"""The sparsity bound :math:`\tfrac12(1 + 1/\mu)`: supports strictly smaller are unique
    and recovered by BP and OMP."""
    if not 0 < mu <= 1:
        raise ValueError(f"mutual coherence must lie in (0, 1], got {mu}")
    return 0.5 * (1.0 + 1.0 / mu)


def dct_matrix(n: int, dtype=torch.float64) -> torch.Tensor:
    r"""Orthonormal DCT-II matrix :math:`C` (``C @ x`` is the transform of ``x``):

    .. math::
        C_{kj} = \sqrt{\tfrac{2}{n}}\; c_k \cos\!\Big(\frac{\pi (2j + 1) k}{2n}\Big),
        \qquad c_0 = \tfrac{1}{\sqrt 2},\ c_{k \ge 1} = 1 .

    Its rows are the DCT atoms, so the dictionary of the atoms is ``C.T``.
    """
    k = torch.arange(n, dtype=dtype)[:, None]
    j = torch.arange(n, dtype=dtype)[None, :]
    C = math.sqrt(2.0 / n) * torch.cos(math.pi * (2 * j + 1) * k / (2 * n))
    C[0] /= math.sqrt(2.0)
    return C


def hadamard_matrix(n: int, dtype=torch.float64) -> torch.Tensor:
    r"""Normalised Sylvester Hadamard matrix :math:`H/\sqrt n` (orthogonal, entries
    :math:`\pm 1/\sqrt n`); ``n`` must be a power of two."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"a Sylvester Hadamard matrix needs a power-of-two size, got {n}")
    H = torch.ones(1, 1, dtype=dtype)
    while H.shape[0] < n:
        H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)], 0)
    return H / math.sqrt(n)


def make_dictionary(
    kind: str, n: int, m: int | None = None, *, seed: int = 0, dtype=torch.float64
) -> torch.Tensor:
    """A column-normalised ``(n, m)`` dictionary of the given ``kind`` (see module docstring).

    ``m`` (number of atoms) is used by ``gaussian`` only (default ``2 n``); the unions of two
    orthobases always have ``2 n`` atoms.
    """
    if kind == "gaussian":
        gen = torch.Generator().manual_seed(seed)
        return normalize_columns(torch.randn(n, m or 2 * n, generator=gen, dtype=dtype))
    eye = torch.eye(n, dtype=dtype)
    if kind == "identity_dct":
        return torch.cat([eye, dct_matrix(n, dtype).T], dim=1)
    if kind == "identity_hadamard":
        return torch.cat([eye, hadamard_matrix(n, dtype).T], dim=1)
    raise ValueError(f"unknown dictionary {kind!r}; expected one of {DICTIONARIES}")


def support_of(z: torch.Tensor, rtol: float = 0.0) -> torch.Tensor:
    """Boolean support of each row: entries with ``|z| > rtol * max_row |z|`` (``rtol=0``:
    the exact non-zeros)."""
    scale = z.abs().amax(dim=-1, keepdim=True)
    return z.abs() > rtol * scale


def recovery_experiment(
    D: torch.Tensor,
    sparsity: Sequence[int],
    n_trials: int,
    *,
    lam: float,
    max_iter: int,
    tol: float,
    support_rtol: float,
    amplitude: tuple[float, float] = (1.0, 2.0),
    noise_std: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    r"""Exact-support recovery rate of basis pursuit (FISTA) and OMP against sparsity.

    For each sparsity level :math:`s`, ``n_trials`` codes with :math:`s` non-zeros are drawn
    (:func:`~deepunfold.data.sparse_signals.sparse_codes`), :math:`y = D x (+ \sigma w)`, and

    * **BP**: :func:`~deepunfold.solvers.proximal_gradient.fista` on :math:`\tfrac12\|y - Dz\|^2 +
      \lambda\|z\|_1` (all levels in one batch) until the relative change is below ``tol``;
      the support is :func:`support_of` the solution with ``support_rtol``;
    * **OMP**: scikit-learn's ``OrthogonalMatchingPursuit`` with ``n_nonzero_coefs = s``
      (the true sparsity is given to OMP, as is usual in this comparison).

    A trial counts as recovered when the estimated support equals the true one exactly.

    Returns:
        Long table with columns ``sparsity``, ``method`` (``"BP (FISTA)"``, ``"OMP"``),
        ``recovery_rate``, ``n_trials``, ``mean_rel_error`` (``||z - x|| / ||x||``), and for BP
        ``converged_fraction`` and ``n_iter``.
    """
    from sklearn.linear_model import OrthogonalMatchingPursuit

    sparsity = [int(s) for s in sparsity]
    n, m = D.shape
    if any(s < 1 or s > n for s in sparsity):
        raise ValueError(f"sparsity levels must lie in [1, {n}] (the signal dimension)")
    gen = torch.Generator().manual_seed(seed)
    levels = torch.tensor(sparsity).repeat_interleave(n_trials)
    x = sparse_codes(len(levels), m, nnz=levels, amplitude=amplitude, generator=gen, dtype=D.dtype)
    y = x @ D.T
    if noise_std > 0:
        y = y + noise_std * torch.randn(y.shape, generator=gen, dtype=D.dtype)
    true_support = x != 0

    bp = fista(y, D, lam, max_iter=max_iter, tol=tol, record_history=False)
    bp_ok = (support_of(bp.z, support_rtol) == true_support).all(dim=1)
    bp_err = torch.linalg.vector_norm(bp.z - x, dim=1) / torch.linalg.vector_norm(x, dim=1)

    rows = []
    Dn, yn = D.numpy(), y.numpy()
    for i, s in enumerate(sparsity):
        sl = slice(i * n_trials, (i + 1) * n_trials)
        omp = OrthogonalMatchingPursuit(n_nonzero_coefs=s, fit_intercept=False)
        coef = np.atleast_2d(omp.fit(Dn, yn[sl].T).coef_)
        omp_ok = ((coef != 0) == true_support[sl].numpy()).all(axis=1)
        xs = x[sl].numpy()
        omp_err = np.linalg.norm(coef - xs, axis=1) / np.linalg.norm(xs, axis=1)
        rows.append(
            {
                "sparsity": s,
                "method": "BP (FISTA)",
                "recovery_rate": float(bp_ok[sl].double().mean()),
                "n_trials": n_trials,
                "mean_rel_error": float(bp_err[sl].mean()),
                "converged_fraction": float(bp.converged[sl].double().mean()),
                "n_iter": bp.n_iter,
            }
        )
        rows.append(
            {
                "sparsity": s,
                "method": "OMP",
                "recovery_rate": float(omp_ok.mean()),
                "n_trials": n_trials,
                "mean_rel_error": float(omp_err.mean()),
                "converged_fraction": float("nan"),
                "n_iter": s,
            }
        )
    return pd.DataFrame(rows)
