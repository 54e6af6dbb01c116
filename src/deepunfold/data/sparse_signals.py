r"""Synthetic sparse-recovery problems for task 3 (ISTA, FISTA and learned unfolded networks).

Every problem is the linear model

.. math::
    x = A z + n, \qquad A \in \mathbb R^{m \times n},\ z \in \mathbb R^n \text{ sparse},

with conventions shared with :mod:`deepunfold.solvers.proximal_gradient`: signals ``x``
are ``(batch, m)``, codes ``z`` are ``(batch, n)`` and the batched forward model is ``x = z @ A.T +
noise``.

* The dictionary has i.i.d. :math:`\mathcal N(0, 1/m)` entries and (optionally) unit-norm
  columns, as in the standard LISTA benchmark (Chen et al. 2018, Liu et al. 2019).
* A code has each entry non-zero independently with probability ``1 - sparsity`` (Bernoulli
  support; ``sparsity`` is the expected *fraction of zeros*, as in task 3's seed
  report, ``seeds/000_*``; docs/architecture.md, Glossary),
  with :math:`\mathcal N(0, 1)` values on the support.
* The noise is Gaussian, either with a fixed standard deviation or scaled per signal to a
  target signal-to-noise ratio
  :math:`\mathrm{SNR} = 10\log_{10}(\|Az\|^2 / \|n\|^2)` in expectation, i.e.
  :math:`\sigma_b = \|A z_b\| / \sqrt m \cdot 10^{-\mathrm{SNR}/20}`.

The same module draws the codes with an exact number of non-zeros per row that task 6
studies (:func:`sparse_codes` with ``nnz``; :mod:`deepunfold.studies.coherence`,
:mod:`deepunfold.data.multilayer_signals`) and normalises dictionaries' columns
(:func:`normalize_columns`).

All randomness comes from explicit :class:`torch.Generator` seeds, never global state, so a
problem is a pure function of its parameters. Problems are stored once as ``.npz`` files
(written atomically) and read back by every later stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from deepunfold.io import atomic_path

__all__ = [
    "gaussian_dictionary",
    "normalize_columns",
    "sparse_codes",
    "add_noise",
    "SparseProblem",
    "make_problem",
    "save_problem",
    "load_problem",
    "make_sparsity_sweep",
    "save_sweep",
    "load_sweep",
]

SPLITS = ("train", "val", "test")


def _generator(seed: int) -> torch.Generator:
    if seed < 0:
        raise ValueError(f"seeds must be non-negative, got {seed}")
    return torch.Generator(device="cpu").manual_seed(int(seed))


def gaussian_dictionary(m: int, n: int, seed: int, normalize: bool = True) -> torch.Tensor:
    r"""An ``(m, n)`` float64 matrix with i.i.d. :math:`\mathcal N(0, 1/m)` entries.

    With ``normalize=True`` every column is rescaled to unit Euclidean norm.
    """
    if m < 1 or n < 1:
        raise ValueError(f"dictionary dimensions must be positive, got m={m}, n={n}")
    A = torch.randn(m, n, generator=_generator(seed), dtype=torch.float64) / np.sqrt(m)
    if normalize:
        A = A / torch.linalg.vector_norm(A, dim=0, keepdim=True)
    return A


def normalize_columns(D: torch.Tensor) -> torch.Tensor:
    """``D`` with every column scaled to unit Euclidean norm (zero columns are an error)."""
    norms = torch.linalg.vector_norm(D, dim=0, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError("dictionary has an all-zero column; its coherence is undefined")
    return D / norms


def sparse_codes(
    n_signals: int,
    n_atoms: int,
    *,
    generator: torch.Generator,
    sparsity: float | None = None,
    nnz=None,
    amplitude: tuple[float, float] = (1.0, 2.0),
    dtype=torch.float64,
) -> torch.Tensor:
    r"""Random sparse codes ``(n_signals, n_atoms)``, with one of two kinds of support.

    * ``sparsity`` (task 3's problems): every entry is non-zero independently with
      probability ``1 - sparsity`` (``sparsity`` is the expected *fraction of zeros*, in
      ``[0, 1)``), with :math:`\mathcal N(0, 1)` values; ``amplitude`` is not used.
    * ``nnz`` (task 6's coherence and multi-layer studies): every row has exactly ``nnz``
      non-zeros (an int, or a ``(n_signals,)`` tensor of per-row counts) at uniformly random
      positions, with random signs and magnitudes uniform in ``amplitude`` (bounded away from
      zero so that "the support" is well defined).

    Give exactly one of ``sparsity`` and ``nnz``. All draws come from ``generator``.
    """
    if (sparsity is None) == (nnz is None):
        raise ValueError("give exactly one of sparsity (fraction of zeros) and nnz (per row)")
    if sparsity is not None:
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity (fraction of zeros) must be in [0, 1), got {sparsity}")
        support = torch.rand(n_signals, n_atoms, generator=generator, dtype=torch.float64)
        values = torch.randn(n_signals, n_atoms, generator=generator, dtype=torch.float64)
        return (values * (support >= sparsity)).to(dtype)
    nnz = torch.as_tensor(nnz).expand(n_signals)
    if bool((nnz < 0).any()) or bool((nnz > n_atoms).any()):
        raise ValueError(f"non-zeros per code must lie in [0, {n_atoms}], got {nnz.tolist()}")
    lo, hi = amplitude
    if not 0 < lo <= hi:
        raise ValueError(f"amplitude range must satisfy 0 < min <= max, got {amplitude}")
    rank = torch.rand(n_signals, n_atoms, generator=generator).argsort(dim=1).argsort(dim=1)
    mask = rank < nnz[:, None]
    mag = lo + (hi - lo) * torch.rand(n_signals, n_atoms, generator=generator, dtype=dtype)
    sign = torch.where(torch.rand(n_signals, n_atoms, generator=generator) < 0.5, -1.0, 1.0)
    return torch.where(mask, mag * sign.to(dtype), torch.zeros((), dtype=dtype))


def add_noise(
    clean: torch.Tensor,
    generator: torch.Generator,
    noise_std: float = 0.0,
    snr_db: float | None = None,
) -> torch.Tensor:
    r"""``clean + noise``; the noise has std ``noise_std``, or per-signal std set by ``snr_db``.

    With ``snr_db`` given, signal ``b`` gets
    :math:`\sigma_b = \|c_b\|/\sqrt m\,10^{-\mathrm{SNR}/20}` (``noise_std`` must then be 0).
    With neither, the signals are returned unchanged (the noiseless setting).
    """
    if noise_std < 0:
        raise ValueError(f"noise_std must be non-negative, got {noise_std}")
    if snr_db is not None and noise_std:
        raise ValueError("give either noise_std or snr_db, not both")
    if snr_db is not None:
        m = clean.shape[-1]
        std = torch.linalg.vector_norm(clean, dim=-1, keepdim=True) / np.sqrt(m)
        std = std * 10.0 ** (-float(snr_db) / 20.0)
    elif noise_std:
        std = torch.tensor(float(noise_std), dtype=clean.dtype)
    else:
        return clean.clone()
    noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
    return clean + std * noise


@dataclass
class SparseProblem:
    """A dictionary and its train / validation / test pairs (all float32 tensors).

    Attributes:
        A: ``(m, n)`` dictionary.
        data: ``{"train": (x, z), "val": (x, z), "test": (x, z)}`` with ``x`` ``(N, m)`` and
            ``z`` ``(N, n)``; a split may hold zero pairs.
        meta: the generating parameters (stored alongside the arrays).
    """

    A: torch.Tensor
    data: dict[str, tuple[torch.Tensor, torch.Tensor]]
    meta: dict = field(default_factory=dict)

    @property
    def m(self) -> int:
        return self.A.shape[0]

    @property
    def n(self) -> int:
        return self.A.shape[1]

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in self.data:
            raise KeyError(f"no split {name!r}; have {sorted(self.data)}")
        return self.data[name]


def make_problem(
    *,
    m: int,
    n: int,
    sparsity: float,
    n_train: int,
    n_val: int,
    n_test: int,
    seed: int,
    noise_std: float = 0.0,
    snr_db: float | None = None,
    normalize: bool = True,
) -> SparseProblem:
    """Draw a dictionary and independent train / validation / test pairs from one seed.

    The dictionary uses ``seed`` itself, so problems that differ only in noise or sizes share
    ``A`` (e.g. the SNR 40 dB and noiseless standard settings). Each split draws from its own
    generator (``seed + 1``, ``+ 2``, ``+ 3``), so changing ``n_train`` does not change the
    test set.
    """
    for key, val in {"n_train": n_train, "n_val": n_val, "n_test": n_test}.items():
        if val < 0:
            raise ValueError(f"{key} must be non-negative, got {val}")
    A = gaussian_dictionary(m, n, seed, normalize=normalize)
    data = {}
    for offset, (name, size) in enumerate(zip(SPLITS, (n_train, n_val, n_test), strict=True)):
        gen = _generator(seed + 1 + offset)
        z = sparse_codes(size, n, sparsity=sparsity, generator=gen)
        x = add_noise(z @ A.T, gen, noise_std=noise_std, snr_db=snr_db)
        data[name] = (x.float(), z.float())
    meta = {
        "m": m,
        "n": n,
        "sparsity": sparsity,
        "noise_std": noise_std,
        "snr_db": float("nan") if snr_db is None else float(snr_db),
        "n_train": n_train,
        "n_val": n_val,
        "n_test": n_test,
        "seed": seed,
        "normalize": normalize,
    }
    return SparseProblem(A=A.float(), data=data, meta=meta)


def save_problem(problem: SparseProblem, path: str | Path) -> None:
    """Write ``problem`` to an ``.npz`` file atomically (uncompressed: fast to read back)."""
    arrays = {"A": problem.A.numpy()}
    for name, (x, z) in problem.data.items():
        arrays[f"x_{name}"] = x.numpy()
        arrays[f"z_{name}"] = z.numpy()
    for key, val in problem.meta.items():
        arrays[f"meta_{key}"] = np.asarray(val)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_problem(path: str | Path) -> SparseProblem:
    """Read a problem written by :func:`save_problem`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"sparse-recovery problem file {path} does not exist")
    with np.load(path) as f:
        A = torch.from_numpy(f["A"])
        data = {
            name: (torch.from_numpy(f[f"x_{name}"]), torch.from_numpy(f[f"z_{name}"]))
            for name in SPLITS
            if f"x_{name}" in f
        }
        meta = {k[5:]: f[k].item() for k in f.files if k.startswith("meta_")}
    return SparseProblem(A=A, data=data, meta=meta)


def make_sparsity_sweep(
    *,
    m: int,
    n: int,
    levels: list[float],
    n_signals: int,
    seed: int,
    noise_std: float = 0.0,
    normalize: bool = True,
) -> dict[str, torch.Tensor]:
    """Test signals at several sparsity levels over one dictionary (the ISTA study).

    Every level reuses the same generator state, so the supports are nested (a sparser level
    keeps a subset of the non-zeros of a denser one, with the same values) and only the
    sparsity differs between levels.

    Returns ``{"A": (m, n), "levels": (L,), "x": (L, N, m), "z": (L, N, n)}`` in float64.
    """
    if n_signals < 1:
        raise ValueError(f"n_signals must be positive, got {n_signals}")
    A = gaussian_dictionary(m, n, seed, normalize=normalize)
    xs, zs = [], []
    for level in levels:
        gen = _generator(seed + 1)
        z = sparse_codes(n_signals, n, sparsity=float(level), generator=gen)
        xs.append(add_noise(z @ A.T, gen, noise_std=noise_std))
        zs.append(z)
    return {
        "A": A,
        "levels": torch.tensor([float(v) for v in levels], dtype=torch.float64),
        "x": torch.stack(xs),
        "z": torch.stack(zs),
    }


def save_sweep(sweep: dict[str, torch.Tensor], path: str | Path) -> None:
    """Write a :func:`make_sparsity_sweep` result to ``.npz``, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{k: v.numpy() for k, v in sweep.items()})


def load_sweep(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a sweep written by :func:`save_sweep`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"sparsity-sweep file {path} does not exist")
    with np.load(path) as f:
        return {k: torch.from_numpy(f[k]) for k in f.files}
