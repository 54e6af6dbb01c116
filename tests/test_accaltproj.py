"""AccAltProj: exact recovery in the setting of Cai, Cai & Wei (2019), batching, bad input."""

import pytest
import torch

from deepunfold.solvers.accaltproj import accaltproj


def rpca_problem(b, m, n, r, alpha, c=1.0, seed=0):
    """The paper's test problems: L = A B (Gaussian factors), S with a fraction alpha of
    entries uniform in [-c E|L|, c E|L|] on a uniformly random support."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(b, m, r, generator=g, dtype=torch.float64) @ torch.randn(
        b, r, n, generator=g, dtype=torch.float64
    )
    scale = c * low.abs().mean((-2, -1), keepdim=True)
    values = (2 * torch.rand(b, m, n, generator=g, dtype=torch.float64) - 1) * scale
    mask = torch.rand(b, m, n, generator=g, dtype=torch.float64) < alpha
    return low, values * mask


def rel(a, b):
    return (torch.linalg.matrix_norm(a - b) / torch.linalg.matrix_norm(b)).max().item()


@pytest.mark.parametrize("alpha", [0.1, 0.3])
def test_exact_recovery_in_the_papers_setting(alpha):
    low, sparse = rpca_problem(3, 300, 300, 5, alpha)
    out = accaltproj(low + sparse, rank=5, tol=1e-9, max_iter=200)
    assert bool(out.converged.all())
    assert rel(out.low, low) < 1e-7
    assert rel(out.sparse, sparse) < 1e-7
    # the support of S is found exactly
    assert torch.equal(out.sparse != 0, sparse != 0)
    # linear convergence: far fewer iterations than a full-SVD method needs
    assert int(out.iterations.max()) < 60


def test_rectangular_and_batch_members_are_independent():
    low, sparse = rpca_problem(4, 200, 100, 3, 0.1, seed=1)
    x = low + sparse
    batch = accaltproj(x, rank=3, tol=1e-9)
    alone = accaltproj(x[2:3], rank=3, tol=1e-9)
    assert torch.allclose(batch.low[2], alone.low[0], rtol=0, atol=1e-12)
    assert batch.iterations[2] == alone.iterations[0]
    assert rel(batch.low, low) < 1e-7


def test_iteration_budget_gives_a_quality_ladder():
    low, sparse = rpca_problem(2, 200, 200, 5, 0.2, seed=2)
    errs = [rel(accaltproj(low + sparse, rank=5, tol=0.0, max_iter=k).low, low) for k in (0, 2, 8)]
    assert errs[0] > errs[1] > errs[2]


def test_float32_works():
    low, sparse = rpca_problem(2, 64, 64, 2, 0.1, seed=3)
    out = accaltproj((low + sparse).float(), rank=2, tol=1e-5)
    assert out.low.dtype == torch.float32
    assert rel(out.low.double(), low) < 1e-3


@pytest.mark.parametrize(
    "x, rank, match",
    [
        (torch.zeros(8, 8), 2, "batch of matrices"),
        (torch.full((1, 8, 8), float("nan")), 2, "NaN"),
        (torch.ones(1, 8, 8), 5, "rank must be"),
        (torch.ones(1, 8, 8), 0, "rank must be"),
    ],
)
def test_bad_input(x, rank, match):
    with pytest.raises(ValueError, match=match):
        accaltproj(x, rank=rank)
