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
    if tau.ndim == 0 and not (torch.is_grad_enabled() and tau.requires_grad):
        # one threshold and no gradient wanted for it: PyTorch's fused kernel, one pass over
        # x instead of four (5-6x faster) and the same values, x - tau or x + tau or 0
        return torch.nn.functional.softshrink(x, float(tau))
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


def svt(x: torch.Tensor, tau, stable_grad: bool = False, method: str = "svd") -> torch.Tensor:
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
        method: ``"svd"`` (default) computes the thin SVD of ``x``. ``"gram"`` computes the
            same map from the eigendecomposition of the Gram matrix of the smaller side,
            :math:`X^\top X = V \operatorname{diag}(\sigma^2) V^\top` (for tall ``X``), as
            :math:`\operatorname{SVT}_\tau(X) = X\, V \operatorname{diag}(\max(1 - \tau/\sigma,
            0)) V^\top` (:func:`_svt_gram`, which also gives its precision: the SVD route's
            rounding error times at most :math:`\sigma_1/\tau`, float64 where that would
            exceed 100). Faster for tall matrices (a 4096 x 20 Casorati matrix: a 20 x 20
            eigenproblem instead of an SVD) and, in float32, for small square ones; forward
            only (it refuses inputs that need a gradient).
    """
    if x.ndim < 2:
        raise ValueError(f"svt needs at least a 2-D input, got shape {tuple(x.shape)}")
    if method not in ("svd", "gram"):
        raise ValueError(f"unknown svt method {method!r}; expected 'svd' or 'gram'")
    tau = _as_threshold(tau, x)
    if method == "gram":
        if torch.is_grad_enabled() and (x.requires_grad or tau.requires_grad):
            raise ValueError("svt(method='gram') has no gradient; use method='svd'")
        return _svt_gram(x, tau)
    if stable_grad:
        return _SVTFunction.apply(x, tau)
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    s = torch.relu(s - tau.unsqueeze(-1))
    return (u * s.unsqueeze(-2)) @ vh


# svt(method="gram") works in float32 for float32 inputs while (sigma_1/tau)^2 <= this
_GRAM_FLOAT32_MAX_KAPPA = 1e4


def _svt_gram(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    r"""SVT through the eigendecomposition of the smaller Gram matrix (``svt(method="gram")``).

    For tall :math:`X` (:math:`m \ge n`) with :math:`G = X^\top X = V \Lambda V^\top`,
    :math:`\sigma = \sqrt{\Lambda}` are the singular values and :math:`V` the right singular
    vectors, so :math:`U = X V \Sigma^{-1}` and

    .. math::
        U \operatorname{diag}(\max(\sigma - \tau, 0)) V^\top = X M, \qquad
        M = V \operatorname{diag}(h) V^\top,\quad h_i = \max(1 - \tau/\sigma_i, 0);

    wide :math:`X` uses :math:`X X^\top` and :math:`M X`. Singular values at or below
    :math:`\tau` (including zero ones, whose vectors are ill-determined) get :math:`h_i = 0`
    and drop out of :math:`M`, so nothing divides by zero.

    Precision. Rounding errors :math:`E` in :math:`G` (forming it, and the eigensolver's
    backward error, both about :math:`\epsilon\|G\|`) change the result, to first order,
    by :math:`U\Sigma(D \circ E)` in the eigenbasis, where :math:`D` holds the divided
    differences of :math:`h(\lambda)`; every :math:`\sigma_i D_{ij}` is at most
    :math:`1/\tau`, so the change is about :math:`\epsilon\,\sigma_1/\tau` relative to
    :math:`\|X\|_2`, where the SVD route's is about :math:`\epsilon` (SVT is 1-Lipschitz).
    Float64 inputs are therefore computed in float64. Float32 inputs are computed in float32
    (Gram matrix, eigendecomposition, :math:`M`) as long as :math:`(\sigma_1/\tau)^2 \le
    10^4` (checked with :math:`\|G\|_F \ge \sigma_1^2`), else in float64: their error stays
    below about :math:`10^{-4}\|X\|_2` even for spectra clustered at :math:`\tau`, and is
    about :math:`10^{-6}` on the learned RPCA's matrices (``tests/test_rpca.py``).
    """
    wide = x.shape[-2] < x.shape[-1]
    # a transposed view (a Casorati matrix built from frames) is read and written in its
    # own memory order: converted row by row, and X M computed as (M X^T)^T
    rowwise = x.stride(-2) == 1 and x.stride(-1) != 1

    def gram(dtype):
        xd = x.mT.to(dtype).mT if rowwise else x.to(dtype)
        return xd @ xd.mT if wide else xd.mT @ xd

    t = tau.to(torch.float64)
    if x.dtype == torch.float64:
        lam, v = torch.linalg.eigh(gram(torch.float64))
    else:
        g = gram(torch.float32)
        single = (torch.linalg.matrix_norm(g) <= _GRAM_FLOAT32_MAX_KAPPA * t * t).expand(
            g.shape[:-2]
        )
        if bool(single.all()):
            lam, v = torch.linalg.eigh(g)
        else:
            g = gram(torch.float64)
            lam, v = torch.linalg.eigh(g) if not bool(single.any()) else _mixed_eigh(g, single)
    sigma = lam.clamp_min(0.0).sqrt()
    t = t.to(sigma.dtype).unsqueeze(-1)
    h = (sigma - t).clamp_min(0.0) / sigma.clamp_min(torch.finfo(sigma.dtype).tiny)
    # eigenvalues come in ascending order: only the last k, those above tau, enter M
    k = int((h > 0).sum(-1).max()) if h.numel() else 0
    v, h = v[..., v.shape[-1] - k :], h[..., h.shape[-1] - k :]
    m = ((v * h.unsqueeze(-2)) @ v.mT).to(x.dtype)  # symmetric
    if wide:
        return m @ x
    return (m @ x.mT).mT if rowwise else x @ m


def _mixed_eigh(g: torch.Tensor, single: torch.Tensor):
    """``eigh`` of float64 Gram matrices ``g``, in float32 where ``single``, as float64."""
    lam, v = g.new_empty(g.shape[:-1]), torch.empty_like(g)
    lam[single], v[single] = (a.double() for a in torch.linalg.eigh(g[single].float()))
    lam[~single], v[~single] = torch.linalg.eigh(g[~single])
    return lam, v


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
        p = torch.where(
            ss > tiny.unsqueeze(-1),
            (f.unsqueeze(-1) + f.unsqueeze(-2)) / ss.clamp_min(tiny.unsqueeze(-1)),
            torch.zeros_like(ss),
        ).clamp(0.0, 1.0)
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
    # the sum of squares, not vector_norm: over a non-innermost dim it is several times
    # faster. The clamp keeps sqrt's gradient finite at all-zero groups (they are zeroed
    # anyway) and guards the division.
    norm = x.square().sum(dim, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny).sqrt()
    if eps:
        norm = norm + eps
    scale = torch.relu(1.0 - tau / norm)
    return x * scale
