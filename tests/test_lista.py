"""Task 3: sparse-recovery data, LISTA / LISTA-CP / ALISTA, layer-wise training, baselines."""

import math

import pandas as pd
import pytest
import torch

from deepunfold.data.sparse_signals import (
    gaussian_dictionary,
    load_problem,
    load_sweep,
    make_problem,
    make_sparsity_sweep,
    save_problem,
    save_sweep,
)
from deepunfold.ops.metrics import nmse_db
from deepunfold.solvers.proximal_gradient import fista, ista
from deepunfold.studies.lista import ista_sparsity_study
from deepunfold.train.checkpoint import load_model, save_model
from deepunfold.train.loop import count_parameters
from deepunfold.unfolded.lista import (
    ALISTA,
    LISTA,
    LISTACP,
    TrainConfig,
    UnfoldedISTA,
    analytic_weight,
    build_model,
    iterations_to_reach,
    layer_metrics,
    parameter_table,
    shrink,
    solver_curve,
    train_layerwise,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def small_problem():
    return make_problem(
        m=40, n=80, sparsity=0.9, noise_std=0.01, n_train=2000, n_val=300, n_test=500, seed=3
    )


# ------------------------------------------------------------------------------------ data


def test_dictionary_and_codes():
    A = gaussian_dictionary(250, 500, seed=1)
    assert A.shape == (250, 500)
    assert torch.allclose(torch.linalg.vector_norm(A, dim=0), torch.ones(500, dtype=A.dtype))
    p = make_problem(
        m=250, n=500, sparsity=0.9, snr_db=40, n_train=4000, n_val=10, n_test=10, seed=1
    )
    x, z = p.split("train")
    assert x.shape == (4000, 250) and z.shape == (4000, 500)
    assert (z == 0).float().mean().item() == pytest.approx(0.9, abs=0.005)
    nz = z[z != 0]
    assert nz.std().item() == pytest.approx(1.0, abs=0.02)
    clean = z @ p.A.T
    snr = 10 * math.log10(clean.pow(2).sum() / (x - clean).pow(2).sum())
    assert snr == pytest.approx(40.0, abs=0.1)


def test_noiseless_shares_dictionary_and_codes():
    kw = dict(m=30, n=60, sparsity=0.8, n_train=50, n_val=5, n_test=20, seed=7)
    noisy, clean = make_problem(snr_db=40, **kw), make_problem(**kw)
    assert torch.equal(noisy.A, clean.A)
    assert torch.equal(noisy.split("test")[1], clean.split("test")[1])
    x, z = clean.split("test")
    assert torch.allclose(x, z @ clean.A.T, atol=1e-5)
    assert not torch.allclose(noisy.split("test")[0], x, atol=1e-4)


def test_problem_roundtrip(tmp_path):
    p = make_problem(
        m=20, n=30, sparsity=0.5, noise_std=0.05, n_train=10, n_val=3, n_test=4, seed=0
    )
    save_problem(p, tmp_path / "p.npz")
    q = load_problem(tmp_path / "p.npz")
    assert torch.equal(p.A, q.A)
    for name in ("train", "val", "test"):
        assert all(torch.equal(a, b) for a, b in zip(p.split(name), q.split(name), strict=True))
    assert q.meta["noise_std"] == 0.05 and q.meta["n_test"] == 4
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_problem(tmp_path / "missing.npz")


def test_bad_data_parameters():
    with pytest.raises(ValueError, match="sparsity"):
        make_problem(m=5, n=5, sparsity=-0.1, n_train=1, n_val=1, n_test=1, seed=0)
    with pytest.raises(ValueError, match="either noise_std or snr_db"):
        make_problem(
            m=5, n=5, sparsity=0.5, noise_std=0.1, snr_db=20, n_train=1, n_val=1, n_test=1, seed=0
        )


def test_nmse_is_ratio_of_means():
    z = torch.tensor([[1.0, 0.0], [10.0, 0.0]])
    z_hat = torch.tensor([[0.0, 0.0], [10.0, 0.0]])  # error 1 on the small signal only
    # literature: sum of errors / sum of norms = 1 / 101; a mean of ratios would give 1/2
    assert nmse_db(z_hat, z) == pytest.approx(10 * math.log10(1 / 101))
    assert nmse_db(z, z) == -math.inf


# ----------------------------------------------------------------------------------- models


def test_shapes_and_parameter_counts():
    m, n, T = 20, 50, 4
    A = gaussian_dictionary(m, n, seed=0).float()
    x = torch.randn(7, m)
    expected = {
        "lista": T * (n * m + 1) + (T - 1) * n * n,
        "lista_cp": T * (m * n + 1),
        "alista": 2 * T,
    }
    for name, count in expected.items():
        model = build_model(name, A, T)
        assert count_parameters(model) == count, name
        assert model(x).shape == (7, n)
        outs = model(x, return_all=True)
        assert len(outs) == T and all(o.shape == (7, n) for o in outs)
        assert torch.equal(outs[1], model(x, n_layers=2))
        assert sum(p.numel() for t in range(T) for p in model.layer_parameters(t)) == count
    assert count_parameters(None) == 0
    assert isinstance(build_model("alista", A, 2), ALISTA)
    with pytest.raises(ValueError, match="n_layers"):
        LISTA(A, 0)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("gista", A, 2)


def test_untrained_lista_is_ista():
    """LISTA and LISTA-CP start as ISTA with threshold lambda/L: identical iterates."""
    A = gaussian_dictionary(30, 60, seed=2).float()
    x = torch.randn(5, 30)
    lam = 0.2
    ref = [ista(x, A, lam, max_iter=k, tol=0.0, record_history=False).z for k in (1, 2, 3)]
    for cls in (LISTA, LISTACP):
        outs = cls(A, 3, lam=lam)(x, return_all=True)
        for o, r in zip(outs, ref, strict=True):
            assert torch.allclose(o, r, atol=1e-5), cls.name


def test_alista_weight_conditions():
    A = gaussian_dictionary(25, 60, seed=4)
    W = analytic_weight(A)
    WA = W.T @ A
    assert torch.allclose(torch.diagonal(WA), torch.ones(60, dtype=A.dtype), atol=1e-10)
    # Lagrange condition: A A^T w_i is parallel to a_i for every column
    G = A @ A.T @ W
    mu = (G * A).sum(0) / (A * A).sum(0)
    assert torch.allclose(G, A * mu, atol=1e-9)
    # optimality: any feasible perturbation (a_i^T d = 0) does not lower ||A^T w_i||
    gen = torch.Generator().manual_seed(0)
    for i in (0, 17, 59):
        a, w = A[:, i], W[:, i]
        d = torch.randn(25, 20, generator=gen, dtype=A.dtype)
        d = d - a[:, None] * (a @ d) / (a @ a)
        assert torch.all(
            torch.linalg.vector_norm(A.T @ (w[:, None] + d), dim=0)
            >= torch.linalg.vector_norm(A.T @ w) - 1e-12
        )
    # lower off-diagonal coherence than using A itself (W = A)
    off = ~torch.eye(60, dtype=torch.bool)
    assert WA[off].pow(2).sum() < (A.T @ A)[off].pow(2).sum()
    # square invertible A: W^T A = I exactly
    B = gaussian_dictionary(30, 30, seed=5)
    assert torch.allclose(analytic_weight(B).T @ B, torch.eye(30, dtype=B.dtype), atol=1e-8)


def test_support_selection_keeps_largest_entries():
    u = torch.tensor([[5.0, -3.0, 0.5, 0.2, -0.1, 2.0, 0.0, 0.05, 1.0, -0.3]])
    theta = torch.tensor(0.4)
    plain = shrink(u, theta)
    assert torch.allclose(plain, torch.sign(u) * torch.relu(u.abs() - 0.4))
    ss = shrink(u, theta, percent=20.0)  # top 2 of 10 pass unshrunk
    assert ss[0, 0] == 5.0 and ss[0, 1] == -3.0
    assert torch.equal(ss[0, 2:], plain[0, 2:])
    # negative learned thresholds act as zero
    assert torch.equal(shrink(u, torch.tensor(-1.0)), u)


# --------------------------------------------------------------------------------- training

FAST = TrainConfig(batch_size=64, lr=1e-3, max_steps=150, val_every=25, patience=3, seed=0)


@pytest.mark.parametrize("name", ["lista", "lista_cp", "alista"])
def test_two_layers_beat_two_ista_iterations(small_problem, name):
    p = small_problem
    lam = 0.1
    model = build_model(name, p.A, 2, lam=lam, support_selection=name == "alista")
    result = train_layerwise(model, p.split("train"), p.split("val"), FAST, test=p.split("test"))
    x, z = p.split("test")
    learned = nmse_db(model(x).detach(), z)
    classic = nmse_db(ista(x, p.A, lam, max_iter=2, tol=0.0, record_history=False).z, z)
    assert learned < classic - 2.0, (learned, classic)
    # the table's last row is this model on the test set
    layers = pd.DataFrame(result.metrics["layers"])
    assert layers.test_nmse_db.iloc[-1] == pytest.approx(learned, abs=1e-6)
    per_layer = layer_metrics(model, x, z)
    assert per_layer.nmse_db.iloc[-1] == pytest.approx(learned, abs=1e-6)
    assert per_layer.nmse_db.iloc[1] < per_layer.nmse_db.iloc[0]
    h = pd.DataFrame(result.history)
    assert list(h.step) == sorted(h.step) and set(h.layer) == {1, 2}
    assert set(h.stage) == {0, 1, 2}


def test_training_is_deterministic(small_problem):
    p = small_problem

    def run(seed):
        torch.manual_seed(123 + seed)  # global state must not matter
        model = build_model("lista_cp", p.A, 2)
        cfg = TrainConfig(max_steps=40, val_every=10, patience=2, seed=seed)
        res = train_layerwise(model, p.split("train"), p.split("val"), cfg)
        return model.state_dict(), pd.DataFrame(res.history)

    (s1, h1), (s2, h2), (s3, _) = run(0), run(0), run(1)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert h1.equals(h2)
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)


def test_checkpoint_roundtrip_and_parameter_table(tmp_path, small_problem):
    p = small_problem
    paths = []
    for name in ("lista", "alista"):
        model = build_model(name, p.A, 3, lam=0.3, support_selection=name == "alista")
        with torch.no_grad():
            model.theta[1].fill_(0.123)
        path = tmp_path / f"{name}.pt"
        save_model(model, path, setting="small")
        back, meta = load_model(path, UnfoldedISTA, metadata=True)
        x = p.split("test")[0]
        assert torch.equal(back(x), model(x)) and meta["setting"] == "small"
        paths.append(path)
    table = parameter_table(paths).set_index("method")
    assert table.loc["ista", "trainable_parameters"] == 0
    assert table.loc["lista", "trainable_parameters"] == 3 * (80 * 40 + 1) + 2 * 80 * 80
    assert table.loc["alista", "trainable_parameters"] == 6


def test_train_config_rejects_bad_values():
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig(max_steps=0)
    with pytest.raises(ValueError, match="learning rate"):
        TrainConfig(lr=-1.0)


# -------------------------------------------------------------------------------- baselines


def test_solver_curve_scores_every_iterate(small_problem):
    p = small_problem
    x, z = p.split("test")
    curve = solver_curve(x, z, p.A, 0.1, 30, accelerated=True)
    assert list(curve.iteration) == list(range(1, 31))
    z10 = fista(x, p.A, 0.1, max_iter=10, tol=0.0, record_history=False).z
    assert curve.nmse_db.iloc[9] == pytest.approx(nmse_db(z10, z), abs=1e-9)
    assert iterations_to_reach(curve, curve.nmse_db.iloc[9]) <= 10
    assert iterations_to_reach(curve, -1000.0) is None


def test_ista_study_fista_converges_faster(tmp_path):
    sweep = make_sparsity_sweep(m=40, n=40, levels=[0.6, 0.9], n_signals=15, noise_std=0.05, seed=1)
    save_sweep(sweep, tmp_path / "sweep.npz")
    back = load_sweep(tmp_path / "sweep.npz")
    assert all(torch.equal(sweep[k], back[k]) for k in sweep)
    assert (sweep["z"][0] == 0).double().mean().item() == pytest.approx(0.6, abs=0.1)
    # nested supports: the sparser level keeps a subset of the denser one's non-zeros
    assert torch.all((sweep["z"][1] != 0) <= (sweep["z"][0] != 0))
    summary, curves = ista_sparsity_study(sweep, lam=0.1, max_iter=800, conv_tol=1e-4)
    s = summary.set_index(["solver", "sparsity"])
    for level in (0.6, 0.9):
        assert (
            s.loc[("fista", level), "iterations_median"]
            < s.loc[("ista", level), "iterations_median"]
        )
        # both reach the same Lasso solution
        assert s.loc[("fista", level), "nmse_db"] == pytest.approx(
            s.loc[("ista", level), "nmse_db"], abs=0.05
        )
    assert s.loc[("ista", 0.9), "iterations_median"] < s.loc[("ista", 0.6), "iterations_median"]
    assert curves["ista_objective"].shape == (2, 801)
    obj = curves["ista_objective"]
    assert torch.all(obj[:, 1:] <= obj[:, :-1] + 1e-12)  # ISTA decreases the objective


def test_diverging_training_fails_clearly(small_problem):
    """NaN in the loss stops training with a message naming the model and layer."""
    from deepunfold.train.loop import NonFiniteError

    p = small_problem
    x, z = p.split("train")
    x = x.clone()
    x[0, 0] = float("nan")
    model = build_model("lista", p.A, 2)
    cfg = TrainConfig(batch_size=len(x), max_steps=5, val_every=5, patience=1, seed=0)
    with pytest.raises(NonFiniteError, match="training loss of .* layer 1"):
        train_layerwise(model, (x, z), p.split("val"), cfg)
