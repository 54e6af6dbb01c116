"""Proximal operators used throughout the package.

Every operator works on batched tensors (any leading dimensions), in float32 or float64,
and is differentiable almost everywhere with PyTorch autograd. Thresholds may be Python
floats or tensors that broadcast against the input, which is how learned per-layer or
per-sample thresholds are passed in.

There is exactly one implementation of each operator here; solvers, unfolded networks and
baselines all call these.
"""

from __future__ import annotations

import torch

__all__ = ["soft_threshold", "hard_threshold", "svt", "group_soft_threshold"]


def _as_threshold(tau, like: torch.Tensor) -> torch.Tensor:
    tau = torch.as_tensor(tau, dtype=like.dtype, device=like.device)
    if torch.any(tau < 0):
        raise ValueError("thresholds must be non-negative")
    return tau


def soft_threshold(x: torch.Tensor, tau, nonneg: bool = False) -> torch.Tensor:
    r"""Soft thresholding, the proximal operator of :math:`\tau\|\cdot\|_1`.

    .. math::
        \operatorname{prox}_{\tau\|\cdot\|_1}(x)_i
        = \operatorname{sign}(x_i)\,\max(|x_i| - \tau, 0)
        = \arg\min_z \tfrac12 \|z - x\|_2^2 + \tau \|z\|_1 .

    With ``nonneg=True`` it is the prox of :math:`\tau\|z\|_1 + \iota_{z \ge 0}(z)`, i.e.
    :math:`\max(x - \tau, 0)`.

    Args:
        x: tensor of any shape.
        tau: non-negative threshold, float or tensor broadcastable to ``x``.
        nonneg: restrict the output to the non-negative orthant.
    """
    tau = _as_threshold(tau, x)
    if nonneg:
        return torch.relu(x - tau)
    return torch.sign(x) * torch.relu(x.abs() - tau)


def hard_threshold(x: torch.Tensor, tau) -> torch.Tensor:
    r"""Hard thresholding, the proximal operator of :math:`\tfrac{\tau^2}{2}\|\cdot\|_0`.

    .. math::
        H_\tau(x)_i = x_i \,\mathbb 1[|x_i| > \tau]
        \in \arg\min_z \tfrac12\|z - x\|_2^2 + \tfrac{\tau^2}{2}\|z\|_0 .

    Entries with :math:`|x_i| = \tau` (where the prox is set-valued) are set to zero.
    """
    tau = _as_threshold(tau, x)
    return x * (x.abs() > tau).to(x.dtype)


def svt(x: torch.Tensor, tau, stable_grad: bool = False) -> torch.Tensor:
    r"""Singular-value thresholding, the proximal operator of :math:`\tau\|\cdot\|_*`.

    For :math:`X = U \operatorname{diag}(\sigma) V^\top` (thin SVD),

    .. math::
        \operatorname{SVT}_\tau(X) = U \operatorname{diag}(\max(\sigma - \tau, 0)) V^\top
        = \arg\min_Z \tfrac12\|Z - X\|_F^2 + \tau\|Z\|_* .

    Args:
        x: tensor of shape ``(..., m, n)``; the operator acts on the last two dimensions.
        tau: non-negative threshold, float or tensor broadcastable to ``x.shape[:-2]``
            (one threshold per matrix), e.g. shape ``(batch,)`` or ``()``.
        stable_grad: back-propagate with the closed-form Jacobian of the spectral function
            (:class:`_SVTFunction`), which stays bounded at repeated and zero singular values
            where autograd through ``torch.linalg.svd`` divides by zero. Same forward values.
    """
    if x.ndim < 2:
        raise ValueError(f"svt needs at least a 2-D input, got shape {tuple(x.shape)}")
    tau = _as_threshold(tau, x)
    if stable_grad:
        return _SVTFunction.apply(x, tau)
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    s = torch.relu(s - tau.unsqueeze(-1))
    return (u * s.unsqueeze(-2)) @ vh


class _SVTFunction(torch.autograd.Function):
    r"""SVT with a backward pass that is finite for every input.

    For the spectral function :math:`F(X) = U f(\Sigma) V^\top` with
    :math:`f(\sigma) = \max(\sigma - \tau, 0)` and :math:`X` tall (:math:`m \ge n`), the
    derivative in a direction :math:`\Delta` with :math:`\Omega = U^\top \Delta V` is

    .. math::
        DF(X)[\Delta] = U\big(D \circ \operatorname{sym}\Omega
            + P \circ \operatorname{skew}\Omega\big)V^\top
            + (I - UU^\top)\,\Delta\, V \operatorname{diag}(f_i / \sigma_i) V^\top,

    .. math::
        D_{ij} = \frac{f_i - f_j}{\sigma_i - \sigma_j}\ (D_{ii} = f'(\sigma_i)), \qquad
        P_{ij} = \frac{f_i + f_j}{\sigma_i + \sigma_j}.

    Because :math:`f` is monotone, 1-Lipschitz and :math:`0 \le f(\sigma) \le \sigma`,
    all of :math:`D`, :math:`P` and :math:`f_i/\sigma_i` lie in [0, 1]: where two singular
    values coincide (or vanish) the divided difference is replaced by its limit, so nothing
    divides by zero. The map is self-adjoint (SVT is the gradient of a convex function), so
    the vector-Jacobian product applies the same formula to the incoming gradient. The
    threshold's gradient is :math:`-\sum_{i:\sigma_i > \tau} (U^\top G V)_{ii}`.
    """

    @staticmethod
    def forward(ctx, x, tau):
        wide = x.shape[-2] < x.shape[-1]
        xt = x.mT if wide else x
        u, s, vh = torch.linalg.svd(xt, full_matrices=False)
        f = torch.relu(s - tau.unsqueeze(-1))
        z = (u * f.unsqueeze(-2)) @ vh
        ctx.save_for_backward(xt, u, s, vh, f, tau)
        ctx.wide = wide
        return z.mT if wide else z

    @staticmethod
    def backward(ctx, grad):
        xt, u, s, vh, f, tau = ctx.saved_tensors
        g = grad.mT if ctx.wide else grad
        v = vh.mT
        tiny = torch.finfo(s.dtype).eps * s.amax(-1, keepdim=True).clamp_min(1.0)
        active = (s > tau.unsqueeze(-1)).to(s.dtype)
        ds = s.unsqueeze(-1) - s.unsqueeze(-2)
        dd = (f.unsqueeze(-1) - f.unsqueeze(-2)) / torch.where(
            ds.abs() > tiny.unsqueeze(-1), ds, torch.ones_like(ds)
        )
        limit = 0.5 * (active.unsqueeze(-1) + active.unsqueeze(-2))
        d = torch.where(ds.abs() > tiny.unsqueeze(-1), dd, limit).clamp(0.0, 1.0)
        ss = s.unsqueeze(-1) + s.unsqueeze(-2)
        p = torch.where(ss > tiny.unsqueeze(-1),
                        (f.unsqueeze(-1) + f.unsqueeze(-2)) / ss.clamp_min(tiny.unsqueeze(-1)),
                        torch.zeros_like(ss)).clamp(0.0, 1.0)  # fmt: skip
        omega = u.mT @ g @ v
        sym, skew = 0.5 * (omega + omega.mT), 0.5 * (omega - omega.mT)
        gx = u @ (d * sym + p * skew) @ vh
        ratio = torch.where(s > tiny, f / s.clamp_min(tiny), torch.zeros_like(s))
        gv = g @ v
        gx = gx + (gv - u @ (u.mT @ gv)) @ (ratio.unsqueeze(-1) * vh)
        gtau = None
        if ctx.needs_input_grad[1]:
            gtau = -(active * torch.diagonal(omega, dim1=-2, dim2=-1)).sum(-1)
            gtau = gtau.sum_to_size(tau.shape) if tau.dim() else gtau.sum()
        return (gx.mT if ctx.wide else gx), gtau


def group_soft_threshold(x: torch.Tensor, tau, dim: int = -2, eps: float = 0.0) -> torch.Tensor:
    r"""Group soft thresholding, the proximal operator of the mixed :math:`\ell_{1,2}` norm.

    The groups are the slices of ``x`` along ``dim``: with ``dim=-2`` each *column* of a
    matrix is a group, with ``dim=-1`` each *row*. For a group :math:`g`,

    .. math::
        \operatorname{prox}_{\tau\|\cdot\|_{1,2}}(X)_g
        = X_g \max\!\Big(0,\ 1 - \frac{\tau}{\|X_g\|_2}\Big),
        \qquad \|X\|_{1,2} = \sum_g \|X_g\|_2 .

    Groups with :math:`\|X_g\|_2 \le \tau` (including all-zero groups) are set to zero; the
    division is guarded so that the gradient stays finite at zero groups.

    Args:
        x: tensor of any shape with at least ``|dim|`` dimensions.
        tau: non-negative threshold, broadcastable to ``x`` with ``dim`` reduced (keepdim).
        dim: the dimension the group norm is taken over.
        eps: optional smoothing added to the norm (0 gives the exact prox).
    """
    tau = _as_threshold(tau, x)
    norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True)
    if eps:
        norm = norm + eps
    # where the norm is tiny the group is zeroed anyway; clamp only guards the division
    scale = torch.relu(1.0 - tau / norm.clamp_min(torch.finfo(x.dtype).tiny))
    return x * scale
