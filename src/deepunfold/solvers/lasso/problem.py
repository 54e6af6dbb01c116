"""What the chunks of one Lasso solve share (:class:`Problem`), and the extended Gram matrix.

Kept apart from :mod:`.solve` and :mod:`.batched` so that both use it without importing each
other the other way round.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch

from deepunfold.solvers.lasso.options import LassoOptions
from deepunfold.solvers.proximal_gradient import lipschitz_constant

__all__ = ["Problem", "extended_gram"]


class Problem:
    """What every chunk of one solve shares: the dictionary, its Gram matrix, lambda, the
    options. The extended Gram matrix, the FISTA step, its iteration matrix and the rank are
    computed on first use (the compiled path needs none of them)."""

    def __init__(self, A: torch.Tensor, lam: float, nonneg: bool, opts: LassoOptions):
        self.A, self.lam, self.nonneg, self.opts = A, lam, nonneg, opts
        self.G = A.T @ A

    @cached_property
    def Ge(self) -> torch.Tensor:  # the batched path's (the compiled path needs only G)
        return extended_gram(self.G)

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


def extended_gram(G: torch.Tensor) -> torch.Tensor:
    """``blockdiag(G, I_c)``: the Gram matrix with one identity column per padding position."""
    n = G.shape[0]
    Ge = torch.zeros(2 * n, 2 * n, dtype=G.dtype, device=G.device)
    Ge[:n, :n] = G
    Ge.diagonal()[n:] = 1.0
    return Ge
