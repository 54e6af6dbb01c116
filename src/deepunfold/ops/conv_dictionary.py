r"""The convolutional dictionary as a linear operator.

A dictionary of ``C`` atoms of size ``k_h x k_w`` over ``M`` channels, stored as the filters
``W`` of shape ``(C, M, k_h, k_w)`` (the layout serves both directions), with a stride ``s``
and a zero padding ``p``, maps codes :math:`\Gamma \in \mathbb R^{C \times H' \times W'}` to
images :math:`D\Gamma \in \mathbb R^{M \times H \times W}`:

* analysis, :math:`D^\top x`: the strided convolution ``conv2d(x, W, stride=s, padding=p)``,
  with code size :math:`H' = \lfloor (H + 2p - k_h)/s \rfloor + 1`
  (:meth:`ConvDictionary.code_size`);
* synthesis, :math:`D\Gamma`: its adjoint, the transposed convolution with the same filters.
  Several image sizes :math:`H` give the same :math:`H'` when :math:`s > 1`; the transposed
  convolution returns :math:`(H' - 1)s - 2p + k_h` rows, and the ``output_padding`` adds the
  missing :math:`H - ((H' - 1)s - 2p + k_h) \in [0, s)` rows
  (:meth:`ConvDictionary.output_padding`), so :meth:`ConvDictionary.synthesis` takes the
  image size;
* :meth:`ConvDictionary.dense`: the explicit matrix of :math:`D`, for coherence and
  operator-norm checks on small images.

The filters are an argument of every call, not part of the operator: the models that use it
(:class:`~deepunfold.unfolded.csc.CSCLayer`, :class:`~deepunfold.unfolded.mlista.MLISTANet`)
own them as learned parameters, and :func:`~deepunfold.solvers.multilayer.conv_layer` wraps
the pair as a layer of the multi-layer pursuits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["ConvDictionary"]


@dataclass(frozen=True)
class ConvDictionary:
    """The geometry of a convolutional dictionary: its ``stride`` and ``padding`` (module
    docstring). Filters ``W`` are ``(n_atoms, in_channels, k_h, k_w)``."""

    stride: int = 1
    padding: int = 0

    def __post_init__(self):
        if self.stride < 1 or self.padding < 0:
            raise ValueError(
                f"need stride >= 1 and padding >= 0, got {self.stride}, {self.padding}"
            )

    def code_size(self, size: int, kernel: int) -> int:
        r"""Code length :math:`\lfloor (n + 2p - k)/s\rfloor + 1` along a dimension of length
        ``size`` (that of the convolution)."""
        return (size + 2 * self.padding - kernel) // self.stride + 1

    def code_shape(self, W: torch.Tensor, in_shape: Sequence[int]) -> tuple[int, int, int]:
        """Shape ``(C, H', W')`` of the codes of images ``in_shape = (M, H, W)``."""
        k_h, k_w = W.shape[-2:]
        return (W.shape[0], self.code_size(in_shape[-2], k_h), self.code_size(in_shape[-1], k_w))

    def output_padding(
        self, code_hw: Sequence[int], out_hw: Sequence[int], kernel: Sequence[int]
    ) -> tuple[int, int]:
        r"""Rows and columns the transposed convolution adds to map codes of size ``code_hw``
        back onto images of size ``out_hw``: :math:`H - ((H' - 1)s - 2p + k)` per dimension."""
        s, p = self.stride, self.padding
        pad = tuple(
            int(n) - ((int(m) - 1) * s - 2 * p + int(k))
            for n, m, k in zip(out_hw, code_hw, kernel, strict=True)
        )
        if any(not 0 <= q < s for q in pad):
            raise ValueError(
                f"codes of size {tuple(code_hw)} are not those of images of size {tuple(out_hw)} "
                f"(kernel {tuple(kernel)}, stride {s}, padding {p})"
            )
        return pad

    def analysis(self, x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        r""":math:`D^\top x`: ``(batch, M, H, W)`` images to ``(batch, C, H', W')`` codes."""
        return F.conv2d(x, W, stride=self.stride, padding=self.padding)

    def synthesis(self, g: torch.Tensor, W: torch.Tensor, out_hw: Sequence[int]) -> torch.Tensor:
        r""":math:`D\Gamma`, the adjoint of :meth:`analysis`: ``(batch, C, H', W')`` codes to
        ``(batch, M, H, W)`` images with ``out_hw = (H, W)``."""
        pad = self.output_padding(g.shape[-2:], out_hw, W.shape[-2:])
        return F.conv_transpose2d(
            g, W, stride=self.stride, padding=self.padding, output_padding=pad
        )

    def dense(self, W: torch.Tensor, in_shape: Sequence[int]) -> torch.Tensor:
        r"""The explicit matrix of :math:`D` on images ``in_shape = (M, H, W)``: shape
        ``(M H W, C H' W')``, both sides flattened in C order, so column ``j`` is
        :math:`D e_j` and row ``i`` is :math:`(D^\top e_i)^\top` (computed so, by the analysis
        of the identity; no gradient)."""
        n = int(in_shape[0]) * int(in_shape[1]) * int(in_shape[2])
        eye = torch.eye(n, dtype=W.dtype, device=W.device).reshape(n, *in_shape)
        with torch.no_grad():
            return self.analysis(eye, W).reshape(n, -1)
