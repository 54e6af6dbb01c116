"""Task 6: mutual coherence, recovery below the bound, the multi-layer pursuits."""

import math

import numpy as np
import pytest
import scipy.fft
import torch

from deepunfold.data.multilayer_signals import generate_signals, make_multilayer_dictionaries
from deepunfold.data.sparse_signals import sparse_codes
from deepunfold.ops.metrics import relative_error
from deepunfold.solvers.multilayer import (
    default_steps,
    layered_basis_pursuit,
    layered_thresholding,
    matrix_layer,
    ml_fista,
    ml_ista,
    ml_objective,
    thresholds_from_lambdas,
)
from deepunfold.solvers.proximal_gradient import fista, ista
from deepunfold.studies.coherence import (
    DICTIONARIES,
    coherence_bound,
    dct_matrix,
    hadamard_matrix,
    make_dictionary,
    mutual_coherence,
    recovery_experiment,
)
from deepunfold.studies.multilayer import (
    PURSUITS,
    forward_support,
    objective_gap,
    oracle_thresholding,
    pursuit_errors,
    reference_objective,
    support_recovery,
)

# small batched loops run fastest (and most repeatably) on one thread
pytestmark = pytest.mark.usefixtures("one_thread")


# ----- mutual coherence ---------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 4, 16, 64, 256])
def test_coherence_identity_hadamard_is_one_over_sqrt_n(n):
    D = make_dictionary("identity_hadamard", n)
    assert D.shape == (n, 2 * n)
    assert mutual_coherence(D) == pytest.approx(1 / math.sqrt(n), rel=1e-12)
    H = hadamard_matrix(n)
    assert torch.allclose(H @ H.T, torch.eye(n, dtype=H.dtype), atol=1e-12)


@pytest.mark.parametrize("n", [6, 12, 48, 60, 100])
def test_coherence_identity_dct_is_sqrt_2_over_n(n):
    # n with an odd factor: some DCT-II atom has an entry of exactly +-sqrt(2/n)
    assert mutual_coherence(make_dictionary("identity_dct", n)) == pytest.approx(
        math.sqrt(2 / n), rel=1e-12
    )


@pytest.mark.parametrize("n", [8, 32, 64])
def test_coherence_identity_dct_power_of_two(n):
    # powers of two never reach the cosine's peak: mu = sqrt(2/n) cos(pi / 2n), a hair below
    mu = mutual_coherence(make_dictionary("identity_dct", n))
    assert mu == pytest.approx(math.sqrt(2 / n) * math.cos(math.pi / (2 * n)), rel=1e-12)
    assert mu == pytest.approx(math.sqrt(2 / n), rel=math.pi**2 / (8 * n * n) + 1e-12)


def test_dct_matrix_is_scipys_orthonormal_dct():
    C = dct_matrix(20)
    ref = scipy.fft.dct(np.eye(20), type=2, norm="ortho", axis=0)
    assert np.abs(C.numpy() - ref).max() < 1e-13


def test_coherence_brute_force_and_scale_invariance():
    gen = torch.Generator().manual_seed(3)
    D = torch.randn(7, 11, generator=gen, dtype=torch.float64)
    brute = max(
        abs(float(D[:, i] @ D[:, j])) / float(D[:, i].norm() * D[:, j].norm())
        for i in range(11)
        for j in range(11)
        if i != j
    )
    assert mutual_coherence(D) == pytest.approx(brute, rel=1e-12)
    scaled = D * torch.linspace(0.1, 5.0, 11, dtype=torch.float64)
    assert mutual_coherence(scaled) == pytest.approx(brute, rel=1e-12)


def test_bound_and_errors():
    assert coherence_bound(1 / 8) == 4.5
    with pytest.raises(ValueError, match="coherence"):
        coherence_bound(0.0)
    with pytest.raises(ValueError, match="power-of-two"):
        make_dictionary("identity_hadamard", 12)
    with pytest.raises(ValueError, match="unknown dictionary"):
        make_dictionary("wavelet", 8)


def test_sparse_codes_have_the_requested_support():
    gen = torch.Generator().manual_seed(0)
    nnz = torch.tensor([0, 1, 5, 16])
    x = sparse_codes(4, 16, nnz=nnz, amplitude=(1.0, 2.0), generator=gen)
    assert ((x != 0).sum(1) == nnz).all()
    nz = x[x != 0].abs()
    assert nz.min() >= 1.0 and nz.max() <= 2.0


def test_sparse_codes_bernoulli_support_and_one_kind_only():
    gen = torch.Generator().manual_seed(0)
    x = sparse_codes(400, 50, sparsity=0.9, generator=gen)
    assert x.dtype == torch.float64 and x.shape == (400, 50)
    assert (x == 0).double().mean() == pytest.approx(0.9, abs=0.01)
    for kinds in ({}, {"sparsity": 0.5, "nnz": 3}):
        with pytest.raises(ValueError, match="exactly one"):
            sparse_codes(2, 4, generator=gen, **kinds)
    with pytest.raises(ValueError, match="fraction of zeros"):
        sparse_codes(2, 4, sparsity=1.0, generator=gen)


@pytest.mark.parametrize("kind", DICTIONARIES)
def test_fista_recovers_the_support_below_the_bound(kind):
    n = 32
    D = make_dictionary(kind, n, seed=1)
    bound = coherence_bound(mutual_coherence(D))
    below = [s for s in range(1, n) if s < bound]
    # support_rtol=0: below the bound the Lasso's exact non-zeros are the true support (Fuchs)
    table = recovery_experiment(
        D, below + [n // 2], 30, lam=0.01, max_iter=1000, tol=1e-8, support_rtol=0.0, seed=2
    )
    ok = table[table.sparsity < bound]
    assert len(ok) == 2 * len(below) and (ok.recovery_rate == 1.0).all(), ok
    # BP's solution is within lambda-bias of the true code, not just on the right support
    assert (ok[ok.method == "BP (FISTA)"].mean_rel_error < 0.02).all()
    # far above the bound neither pursuit recovers every support: the test can fail
    hard = table[table.sparsity == n // 2]
    assert (hard.recovery_rate < 0.5).all(), hard


# ----- the multi-layer model and its pursuits --------------------------------------------------
@pytest.fixture(scope="module")
def model():
    Ds = make_multilayer_dictionaries([40, 60, 90], 2, seed=0)
    sig = generate_signals(Ds, 16, 2, noise_std=0.02, seed=1)
    return Ds, sig


def test_generator(model):
    Ds, _ = model
    clean = generate_signals(Ds, 8, 3, noise_std=0.0, seed=5)
    g1, g2 = clean.gammas
    assert ((g2 != 0).sum(1) == 3).all()
    assert torch.allclose(g1, g2 @ Ds[1].T)
    assert torch.allclose(clean.y, g1 @ Ds[0].T)
    assert ((g1 != 0).sum(1) <= 6).all()  # 3 atoms of 2 non-zeros each
    assert ((Ds[1] != 0).sum(0) == 2).all()
    assert torch.allclose(Ds[0].norm(dim=0), torch.ones(60, dtype=torch.float64))


def test_ml_ista_with_identity_second_layer_is_ista(model):
    """D2 = I, mu2 = 1, lambda2 = 0: every ML-ISTA iterate equals ISTA's on D1."""
    Ds, sig = model
    D1 = Ds[0]
    eye = torch.eye(D1.shape[1], dtype=D1.dtype)
    mu = 1.0 / 30.0
    ours, theirs = {}, {}
    ml_ista(
        sig.y,
        [D1, eye],
        [0.1, 0.0],
        60,
        steps=[mu, 1.0],
        callback=lambda k, g: ours.__setitem__(k, g),
    )
    ista(
        sig.y,
        D1,
        0.1,
        step=mu,
        max_iter=60,
        tol=0.0,
        record_history=False,
        callback=lambda k, z: theirs.__setitem__(k, z.clone()),
    )
    assert sorted(ours) == sorted(theirs) == list(range(1, 61))
    for k in ours:
        assert torch.allclose(ours[k], theirs[k], rtol=0, atol=1e-13), k
    assert (ours[60] != 0).any()


def test_ml_fista_with_identity_second_layer_is_fista(model):
    Ds, sig = model
    D1 = Ds[0]
    eye = torch.eye(D1.shape[1], dtype=D1.dtype)
    mu = default_steps([D1])[0]
    ours = ml_fista(sig.y, [D1, eye], [0.05, 0.0], 80, steps=[mu, 1.0]).gammas[-1]
    theirs = fista(sig.y, D1, 0.05, step=mu, max_iter=80, tol=0.0, record_history=False).z
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-12)


def test_second_threshold_with_identity_adds_lambdas(model):
    """With D2 = I the nested prox is S_{mu l2}(S_{mu l1}(.)) = S_{mu (l1 + l2)}: ISTA with the
    summed weight (the ML-BP objective is then the Lasso with l1 + l2)."""
    Ds, sig = model
    D1 = Ds[0]
    eye = torch.eye(D1.shape[1], dtype=D1.dtype)
    mu = default_steps([D1])[0]
    ours = ml_ista(sig.y, [D1, eye], [0.03, 0.05], 50, steps=[mu, 1.0])
    theirs = ista(sig.y, D1, 0.08, step=mu, max_iter=50, tol=0.0)
    assert torch.allclose(ours.gammas[-1], theirs.z, atol=1e-12)
    assert torch.allclose(ours.history["objective"], theirs.history["objective"], atol=1e-12)


def test_first_ml_ista_iteration_is_the_forward_pass(model):
    Ds, sig = model
    steps = default_steps(Ds)
    lams = [0.05, 0.02]
    taus = thresholds_from_lambdas(lams, steps)
    assert taus == pytest.approx([lams[0] * steps[0], lams[1] * steps[0] * steps[1]])
    one = ml_ista(sig.y, Ds, lams, 1, steps=steps).gammas[-1]
    fp = layered_thresholding(sig.y, [matrix_layer(D) for D in Ds], taus, steps)[-1]
    assert torch.allclose(one, fp, atol=1e-14)
    assert (fp != 0).any()


def test_ml_ista_and_ml_fista_reach_the_same_minimum(model):
    Ds, sig = model
    lams = [0.05, 0.05]
    slow = ml_ista(sig.y, Ds, lams, 1500).history["objective"]
    fast = ml_fista(sig.y, Ds, lams, 400).history["objective"]
    assert torch.allclose(slow[-1], fast[-1], rtol=1e-5)
    # the momentum pays: after 100 iterations ML-FISTA is closer to the minimum
    f_star = torch.minimum(slow[-1], fast[-1])
    assert ((fast[100] - f_star).mean() < 0.5 * (slow[100] - f_star).mean()).item()
    assert slow[-1].mean() < slow[0].mean()


def test_layered_bp_converges_to_the_per_layer_lassos(model):
    Ds, sig = model
    lams = [0.05, 0.02]
    res = layered_basis_pursuit(sig.y, Ds, lams, 1000)
    g1 = fista(sig.y, Ds[0], lams[0], max_iter=5000, tol=1e-12, record_history=False).z
    g2 = fista(g1, Ds[1], lams[1], max_iter=5000, tol=1e-12, record_history=False).z
    assert torch.allclose(res.gammas[0], g1, atol=1e-8)
    assert torch.allclose(res.gammas[1], g2, atol=1e-8)


def test_pursuit_history_tracks_the_truth(model):
    Ds, sig = model
    res = ml_fista(sig.y, Ds, [0.02, 0.02], 300, reference=sig.gammas)
    h = res.history
    assert h["rel_error_1"].shape == (301, 16) and h["rel_error_2"].shape == (301, 16)
    assert (h["rel_error_2"][0] == 1).all()  # from zero
    assert h["rel_error_2"][-1].mean() < 0.3
    f = ml_objective(sig.y, Ds, res.gammas[-1], [0.02, 0.02])
    assert torch.allclose(f, h["objective"][-1])


def test_layered_thresholding_keeps_the_oracle_cardinality(model):
    Ds, sig = model
    keep = [(g != 0).sum(1) for g in sig.gammas]
    est = layered_thresholding(sig.y, [matrix_layer(D) for D in Ds], None, keep=keep)
    assert ((est[0] != 0).sum(1) == keep[0]).all()
    # deeper, D2^T g1_hat may have fewer non-zeros than the cardinality to keep
    assert ((est[1] != 0).sum(1) <= keep[1]).all() and (est[1] != 0).any()
    # noiseless and very sparse: the forward pass finds the first layer's support
    clean = generate_signals(Ds, 50, 1, noise_std=0.0, seed=9)
    keep = [(g != 0).sum(1) for g in clean.gammas]
    est = layered_thresholding(clean.y, [matrix_layer(D) for D in Ds], None, keep=keep)
    hit = ((est[0] != 0) == (clean.gammas[0] != 0)).all(1).double().mean()
    assert hit > 0.8


def test_support_recovery_scores():
    truth = [torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0]])]
    # signal 0: exact; signal 1: the non-zero found plus a false one
    est = [torch.tensor([[5.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0]])]
    (row,) = support_recovery(est, truth)
    assert row == {"exact_recovery": 0.5, "support_overlap": 1.0, "mean_true_nnz": 1.5}
    (row,) = support_recovery([torch.zeros(2, 4)], truth)
    assert row["exact_recovery"] == 0.0 and row["support_overlap"] == 0.0


def test_forward_support_degrades_with_noise(model):
    Ds, _ = model
    rows = forward_support(Ds, 60, 1, [0.0, 0.5], seed=3)
    assert [(r["noise_std"], r["layer"]) for r in rows] == [(0.0, 1), (0.0, 2), (0.5, 1), (0.5, 2)]
    first = {r["noise_std"]: r for r in rows if r["layer"] == 1}
    assert first[0.0]["exact_recovery"] > 0.8  # noiseless and very sparse: mostly exact
    assert first[0.5]["support_overlap"] < first[0.0]["support_overlap"]
    assert all(r["mean_true_nnz"] == (2.0 if r["layer"] == 1 else 1.0) for r in rows)


# ----- the pursuits study (the script multilayer_pursuits.py only reads, calls and writes) ---
def test_pursuit_errors_is_one_averaged_history_per_pursuit(model):
    Ds, sig = model
    lams = [0.02, 0.02]
    table = pursuit_errors(sig, Ds, lams, 5)
    assert list(table.columns) == ["method", "iteration", "objective", "rel_error_1", "rel_error_2"]
    assert list(table["method"].unique()) == list(PURSUITS)
    assert table["iteration"].tolist() == list(range(6)) * 3
    res = ml_ista(sig.y, Ds, lams, 5, reference=sig.gammas)
    row = table[(table.method == "ML-ISTA") & (table.iteration == 5)].iloc[0]
    assert row["objective"] == pytest.approx(float(res.history["objective"][-1].mean()), rel=1e-12)
    assert row["rel_error_2"] == pytest.approx(float(res.history["rel_error_2"][-1].mean()))
    # from zero every pursuit starts at the same point: F(0) = ||y||^2 / 2, relative error 1
    first = table[table.iteration == 0]
    assert first["objective"].nunique() == 1 and (first["rel_error_1"] == 1.0).all()


def test_reference_objective_lies_below_every_compared_run(model):
    Ds, sig = model
    lams = [0.02, 0.02]
    f_star = reference_objective(sig.y, Ds, lams, 300)
    table = pursuit_errors(sig, Ds, lams, 20)
    gaps = objective_gap(table["objective"], f_star)
    assert f_star > 0 and (gaps > -1e-9).all()
    # ML-FISTA closes the gap faster than ML-ISTA
    last = table[table.iteration == 20].set_index("method")
    assert objective_gap(last.loc["ML-FISTA", "objective"], f_star) < objective_gap(
        last.loc["ML-ISTA", "objective"], f_star
    )


def test_objective_gap_is_relative_to_the_magnitude_of_f_star():
    assert objective_gap(3.0, 2.0) == 0.5
    assert objective_gap(-1.0, -2.0) == 0.5
    np.testing.assert_allclose(objective_gap(np.array([2.0, 4.0]), 2.0), [0.0, 1.0])


def test_oracle_thresholding_is_the_forward_pass_with_the_true_cardinalities(model):
    Ds, sig = model
    lams = [0.02, 0.02]
    (row,) = oracle_thresholding(sig, Ds, lams).to_dict("records")
    keep = [(g != 0).sum(1) for g in sig.gammas]
    est = layered_thresholding(sig.y, [matrix_layer(D) for D in Ds], None, keep=keep)
    assert row["method"] == "layered thresholding"
    for i in (1, 2):
        assert row[f"rel_error_{i}"] == float(relative_error(est[i - 1], sig.gammas[i - 1]).mean())
    assert row["objective"] == float(ml_objective(sig.y, Ds, est[-1], lams).mean())
