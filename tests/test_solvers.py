"""ISTA/FISTA against scikit-learn's Lasso, and FISTA's faster convergence."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso

from deepunfold.solvers.proximal_gradient import (
    fista,
    ista,
    lasso_objective,
    lipschitz_constant,
    power_iteration,
)


def problem(seed, m=40, n=80, batch=4, k=6, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(m, n, generator=g, dtype=dtype) / np.sqrt(m)
    z = torch.zeros(batch, n, dtype=dtype)
    for b in range(batch):
        idx = torch.randperm(n, generator=g)[:k]
        z[b, idx] = torch.randn(k, generator=g, dtype=dtype)
    x = z @ A.T + 0.01 * torch.randn(batch, m, generator=g, dtype=dtype)
    return x, A


def sklearn_objective(x, A, lam):
    """Solve each signal with sklearn (objective scaled by 1/m) and return our objective."""
    m = A.shape[0]
    out = []
    for xb in x.numpy():
        est = Lasso(alpha=lam / m, fit_intercept=False, tol=1e-14, max_iter=200_000)
        est.fit(A.numpy(), xb)
        zb = torch.from_numpy(est.coef_)
        out.append(float(lasso_objective(torch.from_numpy(xb), A, zb, lam)["objective"][0]))
    return np.array(out)


def test_power_iteration_matches_svd():
    _, A = problem(0)
    assert power_iteration(A) == pytest.approx(float(torch.linalg.matrix_norm(A, 2)), rel=1e-8)
    assert lipschitz_constant(A) == pytest.approx(
        float(torch.linalg.matrix_norm(A, 2)) ** 2, rel=1e-8
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("solver", [ista, fista])
def test_objective_matches_sklearn_lasso(seed, solver):
    x, A = problem(seed)
    lam = 0.05
    res = solver(x, A, lam, max_iter=50_000, tol=1e-13)
    ref = sklearn_objective(x, A, lam)
    ours = res.objective.numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    assert res.converged.all()


def test_float32_batch_runs_and_is_close():
    x, A = problem(5)
    r64 = fista(x, A, 0.05, max_iter=5000, tol=1e-12)
    r32 = fista(x.float(), A.float(), 0.05, max_iter=5000, tol=1e-6)
    assert r32.z.dtype == torch.float32
    np.testing.assert_allclose(r32.objective.numpy(), r64.objective.numpy(), rtol=1e-4)


def test_fista_needs_fewer_iterations_than_ista():
    x, A = problem(3, m=60, n=120, batch=8)
    lam = 0.02
    f_star = torch.from_numpy(sklearn_objective(x, A, lam))
    target = 1e-6

    def iterations_to_target(solver):
        hist = solver(x, A, lam, max_iter=20_000, tol=0.0).history["objective"]
        gap = ((hist - f_star) / f_star).max(dim=1).values
        reached = torch.nonzero(gap <= target)
        assert len(reached), f"{solver.__name__} never reached the target accuracy"
        return int(reached[0])

    k_ista, k_fista = iterations_to_target(ista), iterations_to_target(fista)
    assert k_fista < k_ista / 2, (k_fista, k_ista)


def test_history_terms_and_budget():
    x, A = problem(4)
    res = ista(x, A, 0.1, max_iter=7, tol=0.0)
    assert res.n_iter == 7
    h = res.history
    assert h["objective"].shape == (8, x.shape[0])
    torch.testing.assert_close(h["objective"], h["reconstruction"] + h["l1"])
    assert (h["nnz"][0] == 0).all()  # starts from zero
    # ISTA with step 1/L is monotone
    assert torch.all(h["objective"][1:] <= h["objective"][:-1] + 1e-12)


def test_given_step_nonneg_and_errors():
    x, A = problem(6)
    res = ista(x, A, 0.05, step=0.5 / lipschitz_constant(A), nonneg=True, max_iter=200)
    assert (res.z >= 0).all()
    with pytest.raises(ValueError, match="rows"):
        ista(x[:, :-1], A, 0.1)
    with pytest.raises(ValueError, match="lambda"):
        ista(x, A, -1.0)
    with pytest.raises(ValueError, match="step"):
        fista(x, A, 0.1, step=-1.0)
