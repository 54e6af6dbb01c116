"""The exact Lasso solver (deepunfold.solvers.lasso): convergence on every dictionary family,
agreement with scikit-learn, the homotopy fallback, clear errors (every option and numeric
argument checked) and threads."""

import warnings

import numpy as np
import pytest
import torch

import deepunfold.solvers.lasso.batched as batched_mod
import deepunfold.solvers.lasso.solve as solve_mod
from deepunfold.solvers.lasso import (
    LassoNotConverged,
    LassoOptions,
    duality_gap,
    kernels,
    kkt_violation,
    lasso_active_set,
    lasso_homotopy,
    objective,
)

TOL = 1e-9


def _unit_columns(A):
    return A / np.linalg.norm(A, axis=0, keepdims=True)


def dictionary(family: str, d: int, n: int, seed: int = 0) -> torch.Tensor:
    """Unit-norm atoms of one family: gaussian, coherent (one strong common direction, mean
    |cos| >= 0.8, as raw CLIP text embeddings), near-duplicate pairs (1 - cos ~ 1e-10),
    exact duplicates."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, n))
    if family == "coherent":
        A = 2.2 * rng.standard_normal((d, 1)) + A
    elif family == "near_duplicate":
        k = min(10, n // 3)
        A[:, n - k :] = A[:, :k] + 1e-5 * rng.standard_normal((d, k)) / np.sqrt(d)
    elif family == "duplicate":
        k = min(10, n // 3)
        A[:, n - k :] = A[:, :k]
    return torch.from_numpy(_unit_columns(A))


def signals(d: int, b: int, seed: int = 1) -> torch.Tensor:
    z = torch.from_numpy(np.random.default_rng(seed).standard_normal((b, d)))
    return z / z.norm(dim=1, keepdim=True)


def mean_abs_cos(A):
    G = (A.T @ A).abs()
    n = G.shape[0]
    return float((G.sum() - G.diagonal().sum()) / (n * (n - 1)))


FAMILIES = ["gaussian", "coherent", "near_duplicate", "duplicate"]
SHAPES = [(40, 120), (60, 20), (16, 300)]  # more atoms than dimensions, fewer, many more


def test_coherent_family_is_coherent():
    assert mean_abs_cos(dictionary("coherent", 64, 300)) >= 0.8


def _sklearn_objective(z, A, lam, nonneg):
    from sklearn.linear_model import Lasso

    d = A.shape[0]
    ref = Lasso(
        alpha=lam / (2 * d), fit_intercept=False, tol=1e-14, max_iter=20_000, positive=nonneg
    )
    out, gaps = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: its duality gap says how far
        for zi in z:
            ref.fit(A.numpy(), zi.numpy())
            out.append(torch.from_numpy(ref.coef_.copy()))
            gaps.append(2 * d * float(ref.dual_gap_))  # in our scale (2 d times sklearn's)
    return objective(z, A, torch.stack(out), lam), torch.tensor(gaps, dtype=torch.float64)


@pytest.mark.parametrize("method", ["compiled", "batched"])
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("nonneg", [False, True])
def test_matches_sklearn_on_every_family(family, shape, nonneg, method):
    """Both implementations (the CPU's compiled kernels, the batched torch path of other
    devices) against scikit-learn on every dictionary family and shape."""
    d, n = shape
    A = dictionary(family, d, n, seed=hash((family, shape)) % 1000)
    z = signals(d, 4)
    lam_max = float((2 * z @ A).abs().max())
    for frac in (0.5, 0.05, 0.005):
        lam = frac * lam_max
        w, info = lasso_active_set(z, A, lam, nonneg=nonneg, method=method)
        assert info["unconverged"] == 0
        assert float(kkt_violation(z, A, w, lam, nonneg).max()) <= TOL * lam
        if nonneg:
            assert float(w.min()) >= 0
        f = objective(z, A, w, lam)
        f_sk, gap_sk = _sklearn_objective(z, A, lam, nonneg)
        # never worse than the peer; where the peer (coordinate descent, slow on nearly
        # dependent atoms) certifies its own accuracy, the two agree to 1e-9 relative
        assert bool((f <= f_sk * (1 + 1e-12)).all()), ((f - f_sk) / f_sk).max()
        assert bool((f_sk - f <= 1e-9 * f_sk + gap_sk).all())
        sure = gap_sk <= 1e-10 * f_sk
        assert bool(((f - f_sk).abs() <= 1e-9 * f_sk)[sure].all())
        assert float(duality_gap(z, A, w, lam, nonneg).max()) <= 1e-8


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("nonneg", [False, True])
def test_homotopy_fallback_alone_converges(family, nonneg):
    """``max_rounds=0``: every signal goes straight to the homotopy (plus its polish)."""
    for d, n in SHAPES:
        A = dictionary(family, d, n, seed=7)
        z = signals(d, 3, seed=2)
        lam = 0.02 * float((2 * z @ A).abs().max())
        w, info = lasso_active_set(z, A, lam, nonneg=nonneg, options=LassoOptions(max_rounds=0))
        assert info["homotopy"] == 3 - info["zero"] and info["unconverged"] == 0
        assert float(kkt_violation(z, A, w, lam, nonneg).max()) <= TOL * lam
        ref, _ = lasso_active_set(z, A, lam, nonneg=nonneg)
        f, f_ref = objective(z, A, w, lam), objective(z, A, ref, lam)
        assert float(((f - f_ref).abs() / f_ref).max()) <= 1e-12


def test_homotopy_path_directly():
    A = dictionary("gaussian", 30, 80, seed=3)
    z = signals(30, 1, seed=4)
    G, c = (A.T @ A).numpy(), (A.T @ z[0]).numpy()
    lam = 0.1
    w = torch.from_numpy(lasso_homotopy(G, c, lam))[None]
    assert float(kkt_violation(z, A, w, lam)) <= 1e-12
    # above lambda_max the code is zero
    big = 2.01 * float(np.abs(c).max())
    assert not lasso_homotopy(G, c, big).any()


def test_issue_coherent_case_converges_fast():
    """The case of issue 13: 64 dimensions, 300 atoms, mean |cos| about 0.8, lambda 0.5
    lambda_max. The solver of 5209907 ran 500 rounds (17 s) and returned a zero code with
    KKT violation 0.92 lambda. Fast is measured in work, not wall time: a few rounds per
    signal and no fallback."""
    A = dictionary("coherent", 64, 300, seed=11)
    z = signals(64, 8, seed=12)
    for nonneg in (False, True):
        score = 2 * z @ A if nonneg else (2 * z @ A).abs()
        lam = 0.5 * float(score.max())
        w, info = lasso_active_set(z, A, lam, nonneg=nonneg)
        assert info["rounds"] <= 5 * z.shape[0] and info["homotopy"] == 0, info
        assert float(kkt_violation(z, A, w, lam, nonneg).max()) <= TOL * lam


def test_unconverged_is_an_error_unless_a_budget_was_asked(monkeypatch):
    A = dictionary("gaussian", 20, 50)
    z = signals(20, 3)
    broken = lambda prob, c: torch.zeros_like(c)  # noqa: E731  a fallback that fails
    monkeypatch.setattr(batched_mod, "_homotopy_rows", broken)
    monkeypatch.setattr(batched_mod, "_polish", lambda *a, **k: None)
    # the compiled path, with kernels that return zero codes
    monkeypatch.setattr(
        solve_mod, "_solve_chunk_compiled", lambda prob, xc, c, info, out: out.zero_()
    )
    budget = LassoOptions(max_rounds=0)
    for method in ("batched", "compiled"):
        with pytest.raises(LassoNotConverged, match="above the KKT tolerance"):
            lasso_active_set(z, A, 0.05, options=budget, method=method)
        with pytest.warns(RuntimeWarning, match="above the KKT tolerance"):
            w, info = lasso_active_set(
                z, A, 0.05, options=budget, on_unconverged="warn", method=method
            )
        assert info["unconverged"] == 3 and info["max_kkt"] > 1e-3


def test_zero_codes_above_lambda_max():
    A = dictionary("gaussian", 20, 50)
    z = signals(20, 5)
    lam = 1.01 * float((2 * z @ A).abs().max())
    w, info = lasso_active_set(z, A, lam)
    assert info["zero"] == 5 and not w.any()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda z, A: (z.clone().index_fill_(0, torch.tensor([1]), np.nan), A, 0.1), "non-finite"),
        (lambda z, A: (z, A.clone().index_fill_(0, torch.tensor([0]), np.inf), 0.1), "non-finite"),
        (lambda z, A: (z[:, :-1], A, 0.1), "shape mismatch"),
        (lambda z, A: (z[0], A, 0.1), "2-D"),
        (lambda z, A: (z, A.clone().index_fill_(1, torch.tensor([3]), 0.0), 0.1), "zero-norm atom"),
        (lambda z, A: (z, A, 0.0), "lambda must be"),
        (lambda z, A: (z, A, -1.0), "lambda must be"),
        (lambda z, A: (z, A, float("nan")), "lambda must be"),
    ],
)
def test_bad_input_is_a_clear_value_error(make, match):
    from deepunfold.clip.codes import sparse_code

    A = dictionary("gaussian", 10, 30)
    z = signals(10, 4)
    args = make(z, A)
    with pytest.raises(ValueError, match=match):
        lasso_active_set(*args)
    for solver in ("active_set", "fista"):
        with pytest.raises(ValueError, match=match):
            sparse_code(*args, solver=solver)


@pytest.mark.parametrize("method", ["compiled", "batched"])
def test_threads_give_the_same_codes_near_the_rank(method):
    """Supports near the rank (the benchmark instance at lambda 0.01, ~400 non-zeros in 512
    dimensions) with 1, 2 and 4 threads: with 5209907 torch's threaded batched LU crashed
    here ("Pivots given to lu_solve must all be greater or equal to 1")."""
    from deepunfold.clip.codes import synthetic_concept_instance

    z, A = synthetic_concept_instance(n_signals=40, seed=1)
    z, lam = z[:8], 0.01
    before = torch.get_num_threads()
    try:
        results = {}
        for t in (1, 2, 4):
            torch.set_num_threads(t)
            w, info = lasso_active_set(z, A, lam, method=method)
            assert torch.get_num_threads() == t  # restored after the solve
            assert info["unconverged"] == 0
            results[t] = objective(z, A, w, lam)
            assert float(kkt_violation(z, A, w, lam).max()) <= TOL * lam
            assert float((w != 0).sum(-1).double().mean()) > 350
        for t in (2, 4):
            assert float(((results[t] - results[1]).abs() / results[1]).max()) <= 1e-12
        w, info = lasso_active_set(z, A, lam, nonneg=True, threads=3, method=method)
        assert float(kkt_violation(z, A, w, lam, True).max()) <= TOL * lam
    finally:
        torch.set_num_threads(before)


def test_compiled_and_batched_agree_on_random_families():
    """Random draws over families, shapes and lambdas: the compiled kernels and the batched
    path reach the same objective (both exact), plain and non-negative."""
    rng = np.random.default_rng(2026)
    for trial in range(12):
        family = FAMILIES[trial % len(FAMILIES)]
        d = int(rng.integers(8, 60))
        n = int(rng.integers(5, 200))
        A = dictionary(family, d, n, seed=int(rng.integers(1 << 30)))
        z = signals(d, 6, seed=int(rng.integers(1 << 30)))
        nonneg = bool(trial % 2)
        lam = float(rng.choice([0.3, 0.03, 0.003])) * float((2 * z @ A).abs().max())
        w1, _ = lasso_active_set(z, A, lam, nonneg=nonneg, method="compiled")
        w2, _ = lasso_active_set(z, A, lam, nonneg=nonneg, method="batched")
        f1, f2 = objective(z, A, w1, lam), objective(z, A, w2, lam)
        assert float(((f1 - f2).abs() / f2).max()) <= 1e-11, (trial, family, d, n)


def test_pivot_swaps_an_atom_in_at_full_rank():
    """Supports at the rank: every violator lies in the span of the support, so it can only
    enter by a swap (``_pivot``); without it the active set gave up on these signals."""
    A = dictionary("near_duplicate", 40, 120, seed=7)
    z = signals(40, 4)
    lam = 0.005 * float((2 * z @ A).abs().max())
    G, C = (A.T @ A).numpy(), (z @ A).numpy()
    W, stats = kernels.solve_rows(
        G,
        C,
        lam / 2,
        nonneg=False,
        tol=1e-9,
        max_rounds=200,
        enter_min=16,
        max_steps=5000,
        kmax=40,
    )
    assert stats[kernels.FALLBACK] == 0
    assert float(kkt_violation(z, A, torch.from_numpy(W), lam).max()) <= TOL * lam
    assert int((W != 0).sum(1).max()) >= 39


@pytest.mark.parametrize("nonneg", [False, True])
def test_compiled_check_matches_the_check_from_the_signals(nonneg):
    """The final check's kernel (``kkt_rows``, from the Gram matrix and the codes) against
    ``kkt_violation`` (from ``z`` and ``A``) on codes that are not minimisers: random sparse
    codes of both signs, zero rows and converged rows, every family."""
    rng = np.random.default_rng(5)
    for family in FAMILIES:
        A = dictionary(family, 30, 70, seed=1)
        z = signals(30, 12, seed=3)
        lam = 0.1 * float((2 * z @ A).abs().max())
        w = torch.from_numpy(rng.standard_normal((12, 70)) * (rng.random((12, 70)) < 0.1))
        if nonneg:
            w = w.abs()
        w[0] = 0.0
        w[1:3], _ = lasso_active_set(z[1:3], A, lam, nonneg=nonneg)
        G, C = (A.T @ A).numpy(), (z @ A).numpy()
        viol, l1 = kernels.kkt_rows(G, C, w.numpy(), lam / 2, nonneg=nonneg)
        ref = kkt_violation(z, A, w, lam, nonneg).numpy()
        assert np.allclose(viol, ref, rtol=1e-10, atol=1e-12 * lam)
        assert np.allclose(l1, w.abs().sum(-1).numpy(), rtol=1e-14)
        assert viol[1:3].max() <= TOL * lam


def test_kernel_output_buffer_is_checked():
    G, C = np.eye(4), np.ones((2, 4))
    opts = dict(nonneg=False, tol=1e-9, max_rounds=10, enter_min=2, max_steps=50, kmax=4)
    with pytest.raises(ValueError, match="out must be"):
        kernels.solve_rows(G, C, 0.1, out=np.zeros((2, 3)), **opts)
    out = np.full((2, 4), np.nan)
    W, _ = kernels.solve_rows(G, C, 0.5, out=out, **opts)
    assert W is out and np.allclose(out, 0.5)  # every element written: (1 - 0.5) / 1


@pytest.mark.parametrize("method", ["compiled", "batched"])
def test_empty_batch_and_all_zero_codes(method):
    A = dictionary("gaussian", 10, 20)
    w, info = lasso_active_set(torch.zeros(0, 10, dtype=torch.float64), A, 0.1, method=method)
    assert w.shape == (0, 20) and info["unconverged"] == 0
    z = signals(10, 3)
    w, info = lasso_active_set(z, A, 2.01 * float((2 * z @ A).abs().max()), method=method)
    assert w.shape == (3, 20) and not w.any() and info["zero"] == 3


def test_method_is_checked():
    A = dictionary("gaussian", 10, 20)
    z = signals(10, 2)
    with pytest.raises(ValueError, match="method must be"):
        lasso_active_set(z, A, 0.1, method="fast")


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_lambda_converges_to_the_rounding_bound(family):
    """lambda = 1e-7 lambda_max: ``tol * lambda`` is below what float64 correlations resolve
    (before kkt_rounding_bound every code here raised at 2e-9 to 3e-8 lambda). The check then
    accepts the rounding bound, and the code still matches least squares' objective."""
    from deepunfold.solvers.lasso import kkt_rounding_bound

    for d, n in [(37, 92), (54, 100), (7, 48)]:
        A = dictionary(family, d, n, seed=d * n)
        z = signals(d, 5, seed=n)
        lam = 1e-7 * float((2 * z @ A).abs().max())
        for nonneg in (False, True):
            w, info = lasso_active_set(z, A, lam, nonneg=nonneg)
            assert info["unconverged"] == 0
            kkt = kkt_violation(z, A, w, lam, nonneg)
            assert bool((kkt <= torch.clamp(kkt_rounding_bound(z, A, w), min=TOL * lam)).all())
            if not nonneg:  # d < n: the minimum-norm least-squares code fits z exactly
                w_ls = torch.linalg.pinv(A) @ z.T
                f_ls = lam * w_ls.abs().sum(0) + (z.T - A @ w_ls).pow(2).sum(0)
                assert bool((objective(z, A, w, lam) <= f_ls * (1 + 1e-9)).all())


# one bad value per field of LassoOptions (and a second kind where the field has two)
BAD_OPTIONS = [
    ("tol", -1.0),
    ("tol", 0.0),
    ("tol", float("nan")),
    ("tol", "1e-9"),
    ("max_rounds", -1),
    ("max_rounds", 2.5),
    ("max_rounds", True),
    ("chunk_size", 0),
    ("chunk_size", 100.0),
    ("enter_bulk", 0),
    ("enter_bulk", None),
    ("enter_growth", -0.1),
    ("enter_growth", float("inf")),
    ("warm", "cold"),
    ("warm", None),
    ("warm_iter", 0),
    ("warm_iter", 4.5),
    ("zero_start_max", -1),
    ("zero_start_max", "300"),
    ("bulk_rounds", 0),
    ("direct_frac", -0.5),
    ("direct_frac", float("nan")),
    ("enter_min", 0),
    ("enter_first", 0),
    ("stage_tol", 0.0),
    ("stage_tol", -0.3),
    ("stage_rounds", 0),
    ("saturated_room", -1),
    ("stall_rounds", 0),
    ("sub_batch", 0),
    ("stage_float32", 1),
    ("stage_float32", "yes"),
]


def test_every_option_field_is_checked():
    from dataclasses import fields

    checked = {name for name, _ in BAD_OPTIONS}
    assert checked == {f.name for f in fields(LassoOptions)}


@pytest.mark.parametrize(("field", "value"), BAD_OPTIONS)
def test_bad_option_is_a_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"LassoOptions\.{field} must be .*got {value!r}"):
        LassoOptions(**{field: value})


def test_options_are_frozen_and_accept_numpy_numbers():
    opts = LassoOptions(tol=np.float64(1e-8), max_rounds=np.int64(10), direct_frac=1)
    assert opts.tol == 1e-8 and type(opts.max_rounds) is int and opts.direct_frac == 1.0
    with pytest.raises(AttributeError):
        opts.tol = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="LassoOptions.tol must be finite and positive, got -1"):
        LassoOptions(tol=-1)


def test_options_change_the_solve_as_the_keywords_did():
    """``options=LassoOptions(...)`` reaches both paths: a zero round budget sends every
    non-zero code to the homotopy, on the compiled and the batched path alike."""
    A = dictionary("gaussian", 12, 30)
    z = signals(12, 4)
    lam = 0.1 * float((2 * z @ A).abs().max())
    for method in ("compiled", "batched"):
        w0, info0 = lasso_active_set(z, A, lam, method=method)
        w1, info1 = lasso_active_set(z, A, lam, method=method, options=LassoOptions())
        assert torch.equal(w0, w1) and info0 == info1  # the defaults are the defaults
        _, info = lasso_active_set(z, A, lam, method=method, options=LassoOptions(max_rounds=0))
        assert info["homotopy"] == 4 - info["zero"] > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(lam=-0.1), "lambda must be"),
        (dict(lam=float("inf")), "lambda must be"),
        (dict(lam="0.1"), "lambda must be"),
        (dict(nonneg=1), "nonneg must be"),
        (dict(options=dict(tol=1e-6)), "options must be a LassoOptions"),
        (dict(method="fast"), "method must be"),
        (dict(threads=0), "threads must be at least 1, got 0"),
        (dict(threads=-2), "threads must be at least 1"),
        (dict(threads=1.5), "threads must be an integer"),
        (dict(on_unconverged="ignore"), "on_unconverged must be"),
        (dict(progress=5), "progress must be callable"),
    ],
)
def test_lasso_active_set_arguments_are_checked(kwargs, match):
    A = dictionary("gaussian", 10, 20)
    z = signals(10, 2)
    kwargs = {"lam": 0.1, **kwargs}
    lam = kwargs.pop("lam")
    with pytest.raises(ValueError, match=match):
        lasso_active_set(z, A, lam, **kwargs)


def test_homotopy_arguments_are_checked():
    A = dictionary("gaussian", 10, 20)
    z = signals(10, 1)
    G, c = (A.T @ A).numpy(), (A.T @ z[0]).numpy()
    for lam in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="lambda must be"):
            lasso_homotopy(G, c, lam)
    with pytest.raises(ValueError, match="max_steps must be at least 0, got -1"):
        lasso_homotopy(G, c, 0.1, max_steps=-1)
    with pytest.raises(ValueError, match="max_steps must be an integer"):
        lasso_homotopy(G, c, 0.1, max_steps=10.0)
    with pytest.raises(ValueError, match="G must be square"):
        lasso_homotopy(G[:, :5], c, 0.1)
    with pytest.raises(ValueError, match="correlations c must have shape"):
        lasso_homotopy(G, c[:5], 0.1)
    with pytest.raises(ValueError, match="finite"):
        lasso_homotopy(G, np.full_like(c, np.nan), 0.1)


@pytest.mark.parametrize("lam", [-1.0, float("nan"), float("inf"), "a"])
def test_certificates_check_lambda(lam):
    """objective, kkt_violation and duality_gap take lambda >= 0 (0: least squares)."""
    A = dictionary("gaussian", 10, 20)
    z = signals(10, 2)
    w = torch.zeros(2, 20, dtype=torch.float64)
    for fn in (objective, kkt_violation, duality_gap):
        with pytest.raises(ValueError, match="lambda must be"):
            fn(z, A, w, lam)
        assert fn(z, A, w, 0.0).shape == (2,)
