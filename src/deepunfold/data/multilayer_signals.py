r"""Signals of the multi-layer sparse model of task 6 (:mod:`deepunfold.solvers.multilayer`).

.. math::
    y = D_1 \gamma_1 + \sigma w, \qquad \gamma_{i-1} = D_i \gamma_i, \qquad
    \|\gamma_i\|_0 \le s_i :

:func:`make_multilayer_dictionaries` draws :math:`D_1, \dots, D_L` (a Gaussian first layer,
deeper layers with sparse atoms so that every :math:`\gamma_i` stays sparse) and
:func:`generate_signals` draws the deepest codes and the signals they make. Every draw comes
from a private generator seeded by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from deepunfold.data.sparse_signals import normalize_columns, sparse_codes

__all__ = ["make_multilayer_dictionaries", "MultiLayerSignals", "generate_signals"]


def make_multilayer_dictionaries(
    dims: Sequence[int], atom_nnz: int, *, seed: int, dtype=torch.float64
) -> list[torch.Tensor]:
    r"""Dictionaries :math:`D_1 \in \mathbb R^{n_0 \times n_1}, \dots, D_L`.

    :math:`D_1` has i.i.d. Gaussian entries; every deeper :math:`D_i` has ``atom_nnz``
    non-zeros :math:`\pm 1/\sqrt{\texttt{atom\_nnz}}` (random signs) per column at random rows
    (equal magnitudes keep the contrast of :math:`\gamma_{i-1}` low), so that
    :math:`\gamma_{i-1} = D_i\gamma_i` stays sparse (at most ``atom_nnz`` times as many
    non-zeros). All columns unit-norm.

    Args:
        dims: ``[n_0, n_1, ..., n_L]``: signal dimension then atoms per layer.
        atom_nnz: non-zeros per atom of :math:`D_2, \dots, D_L`.
        seed: seed of a private generator.
    """
    if len(dims) < 3:
        raise ValueError(f"a multi-layer model needs dims [n0, n1, n2, ...], got {list(dims)}")
    gen = torch.Generator().manual_seed(seed)
    Ds = [normalize_columns(torch.randn(dims[0], dims[1], generator=gen, dtype=dtype))]
    for rows, cols in zip(dims[1:-1], dims[2:], strict=True):
        if not 1 <= atom_nnz <= rows:
            raise ValueError(f"atom_nnz must lie in [1, {rows}], got {atom_nnz}")
        codes = sparse_codes(
            cols, rows, nnz=atom_nnz, amplitude=(1.0, 1.0), generator=gen, dtype=dtype
        )
        Ds.append(normalize_columns(codes.T))
    return Ds


@dataclass
class MultiLayerSignals:
    """Signals of the multi-layer model: ``y`` ``(batch, n_0)`` and the true codes
    ``gammas[i-1]`` = :math:`\\gamma_i` ``(batch, n_i)``."""

    y: torch.Tensor
    gammas: list[torch.Tensor]


def generate_signals(
    Ds: Sequence[torch.Tensor],
    n_signals: int,
    sparsity: int,
    *,
    noise_std: float = 0.0,
    amplitude: tuple[float, float] = (1.0, 2.0),
    seed: int = 0,
) -> MultiLayerSignals:
    r""":math:`y = D_1 \cdots D_L \gamma_L + \sigma w`, :math:`\gamma_L` with ``sparsity``
    non-zeros (random signs, magnitudes uniform in ``amplitude``), :math:`w \sim \mathcal N(0,
    I)`, and :math:`\gamma_{i-1} = D_i\gamma_i`."""
    gen = torch.Generator().manual_seed(seed)
    dtype = Ds[0].dtype
    g = sparse_codes(
        n_signals, Ds[-1].shape[1], nnz=sparsity, amplitude=amplitude, generator=gen, dtype=dtype
    )
    gammas = [g]
    for D in reversed(Ds[1:]):
        gammas.insert(0, gammas[0] @ D.T)
    y = gammas[0] @ Ds[0].T
    if noise_std > 0:
        y = y + noise_std * torch.randn(y.shape, generator=gen, dtype=dtype)
    return MultiLayerSignals(y=y, gammas=gammas)
