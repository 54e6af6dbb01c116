"""Each proximal operator against its closed form and its optimality condition."""

import pytest
import torch

from deepunfold.ops.prox import group_soft_threshold, hard_threshold, soft_threshold, svt

DTYPES = [torch.float32, torch.float64]


def tol(dtype):
    return 1e-5 if dtype == torch.float32 else 1e-12


@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_threshold_closed_form_and_subgradient(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 33, generator=g, dtype=dtype) * 2
    tau = 0.7
    z = soft_threshold(x, tau)
    expected = torch.where(x > tau, x - tau, torch.where(x < -tau, x + tau, torch.zeros_like(x)))
    torch.testing.assert_close(z, expected, atol=tol(dtype), rtol=0)
    # optimality of argmin 1/2||z - x||^2 + tau||z||_1:  x - z in tau * d|z|
    r = x - z
    nz = z != 0
    torch.testing.assert_close(r[nz], tau * torch.sign(z[nz]), atol=tol(dtype), rtol=0)
    assert torch.all(r[~nz].abs() <= tau + tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_threshold_paths_agree_and_learned_threshold_gets_gradient(dtype):
    """One threshold without a gradient takes the fused kernel; a per-entry or learned one
    the formula. Same values, bit for bit, and the same gradient with respect to x."""
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(8, 50, generator=g, dtype=dtype) * 2).requires_grad_()
    tau = torch.tensor(0.6, dtype=dtype, requires_grad=True)  # learned: formula path
    slow = soft_threshold(x, tau)
    fast = soft_threshold(x, tau.detach())  # fused path
    assert torch.equal(fast, slow)
    assert torch.equal(fast, soft_threshold(x, tau.detach().expand(8, 50)))  # per entry
    (gx_slow, gt) = torch.autograd.grad(slow.sum(), (x, tau))
    (gx_fast,) = torch.autograd.grad(fast.sum(), x)
    assert torch.equal(gx_fast, gx_slow)
    assert gt == -torch.sign(slow).sum()  # d/dtau of sign(x)(|x| - tau)


def test_soft_threshold_nonneg_and_broadcast():
    x = torch.tensor([[-2.0, 0.5, 3.0], [1.0, -1.0, 0.1]])
    tau = torch.tensor([[1.0], [0.05]])
    torch.testing.assert_close(
        soft_threshold(x, tau, nonneg=True), torch.tensor([[0.0, 0.0, 2.0], [0.95, 0.0, 0.05]])
    )
    with pytest.raises(ValueError):
        soft_threshold(x, -1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_hard_threshold_is_prox_of_l0(dtype):
    x = torch.linspace(-3, 3, 61, dtype=dtype)
    tau = 1.0
    z = hard_threshold(x, tau)
    torch.testing.assert_close(z, torch.where(x.abs() > tau, x, torch.zeros_like(x)))
    # elementwise the prox picks the better of z = 0 and z = x for 1/2(z-x)^2 + tau^2/2 [z != 0]
    keep = 0.5 * tau**2
    zero = 0.5 * x**2
    chosen = torch.where(z != 0, torch.full_like(x, keep), zero)
    assert torch.all(chosen <= torch.minimum(zero, torch.full_like(x, keep)) + tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_svt_closed_form_and_optimality(dtype):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 12, 8, generator=g, dtype=dtype)
    tau = torch.full((5,), 1.5, dtype=dtype)
    z = svt(x, tau)
    for b in range(5):
        u, s, vh = torch.linalg.svd(x[b], full_matrices=False)
        expected = u @ torch.diag(torch.clamp(s - 1.5, min=0)) @ vh
        torch.testing.assert_close(
            z[b], expected, atol=1e-4 if dtype == torch.float32 else 1e-10, rtol=0
        )
        # optimality: X - Z = tau (U1 V1^T + W) with ||W||_2 <= 1, i.e. the residual's
        # singular values are min(s, tau) <= tau, and Z's are the shrunk ones
        rs = torch.linalg.svdvals(x[b] - z[b])
        assert rs.max() <= 1.5 + 1e-4
        torch.testing.assert_close(
            torch.linalg.svdvals(z[b]), torch.clamp(s - 1.5, min=0), atol=1e-4, rtol=0
        )


def test_svt_zero_threshold_is_identity_and_rank_drops():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(20, 10, generator=g, dtype=torch.float64)
    torch.testing.assert_close(svt(x, 0.0), x)
    s = torch.linalg.svdvals(x)
    z = svt(x, float(s[3]))  # keeps 3 singular values
    assert torch.linalg.matrix_rank(z) == 3


@pytest.mark.parametrize("dim", [-2, -1])
@pytest.mark.parametrize("dtype", DTYPES)
def test_group_soft_threshold_closed_form_and_optimality(dim, dtype):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, 9, generator=g, dtype=dtype)
    x[0, :, 2] = 0.0  # an all-zero column
    tau = 1.8
    z = group_soft_threshold(x, tau, dim=dim)
    norms = torch.linalg.vector_norm(x, dim=dim, keepdim=True)
    expected = torch.where(norms > tau, x * (1 - tau / norms.clamp_min(1e-30)), torch.zeros_like(x))
    torch.testing.assert_close(z, expected, atol=tol(dtype), rtol=0)
    # optimality: x - z = tau z/||z|| on kept groups, and ||x_g|| <= tau on zeroed groups
    zn = torch.linalg.vector_norm(z, dim=dim, keepdim=True)
    kept = (zn > 0).expand_as(z)
    direction = z / zn.clamp_min(1e-30)
    torch.testing.assert_close((x - z)[kept], (tau * direction)[kept], atol=1e-4, rtol=0)
    assert torch.all(norms[zn == 0] <= tau + tol(dtype))


def test_group_soft_threshold_gradient_finite_at_zero_group():
    x = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    group_soft_threshold(x, 0.5).sum().backward()
    assert torch.isfinite(x.grad).all()
