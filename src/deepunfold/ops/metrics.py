r"""Metrics the tasks score their estimates with: the NMSE in dB, the fraction of zeros and
the per-row relative error.

The NMSE of a whole set is the error energy over the reference energy, summed over every
sample and entry (the LISTA literature's average, and the one the RPCA tasks report), not a
mean of per-sample ratios. Both are computed in float64 whatever the inputs' dtype.
"""

from __future__ import annotations

import torch

__all__ = ["nmse_db", "fraction_zeros", "relative_error"]


def nmse_db(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    r"""Normalised mean-squared error of a whole set in dB:

    .. math::
        \mathrm{NMSE} = 10 \log_{10} \frac{\sum_b \|\hat y_b - y_b\|^2}{\sum_b \|y_b\|^2}

    over all entries of ``estimate`` and ``reference`` (same shape, any number of
    dimensions). An exact estimate gives ``-inf``; an all-zero reference is an error.
    """
    err = (estimate.double() - reference.double()).pow(2).sum()
    ref = reference.double().pow(2).sum()
    if ref == 0:
        raise ValueError("NMSE is undefined for an all-zero reference")
    if err == 0:
        return float("-inf")
    return float(10.0 * torch.log10(err / ref))


def fraction_zeros(z: torch.Tensor) -> float:
    """Fraction of exactly-zero entries of ``z`` (the study's "sparsity" of a prediction)."""
    return float((z == 0).double().mean())


def relative_error(estimate: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-row :math:`\\|\\hat g - g\\| / \\|g\\|` (rows of ``truth`` must be non-zero)."""
    return torch.linalg.vector_norm(estimate - truth, dim=-1) / torch.linalg.vector_norm(
        truth, dim=-1
    ).clamp_min(torch.finfo(truth.dtype).tiny)
