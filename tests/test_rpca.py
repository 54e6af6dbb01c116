"""Tasks 4/5: moving-digits generator, PCP, the unfolded RPCA network and its training."""

import numpy as np
import pytest
import torch

from deepunfold.data.digits import load_sklearn_digits
from deepunfold.data.moving_digits import (
    digit_pools,
    make_moving_digits,
    render_digits,
    trajectories,
)
from deepunfold.ops.metrics import nmse_db
from deepunfold.ops.prox import group_soft_threshold, soft_threshold, svt
from deepunfold.solvers.pcp import pcp
from deepunfold.unfolded.rpca import (
    UnfoldedRPCA,
    as_matrix,
    as_samples,
    from_matrix,
    initial_thresholds,
    layer_statistics,
    numerical_rank,
    rpca_loss,
    sparse_prox,
    train_unfolded,
)

# one thread: these small problems only slow down when threads fight over two cores
pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------ generator


def test_trajectories_stay_inside_and_bounce_only_at_borders():
    rng = np.random.default_rng(0)
    step = 0.1
    pos = trajectories(40, 60, 2, step, rng)
    assert pos.shape == (40, 60, 2, 2)
    assert pos.min() >= 0.0 and pos.max() <= 1.0
    d = np.diff(pos, axis=1)
    # between bounces a digit moves in a straight line at constant speed
    speed = np.linalg.norm(d, axis=-1)
    free = np.all((pos[:, 1:] > 0) & (pos[:, 1:] < 1) & (pos[:, :-1] > 0) & (pos[:, :-1] < 1), -1)
    np.testing.assert_allclose(speed[free], step, rtol=1e-9)
    # a coordinate reverses direction only where it touched a border
    turn = np.sign(d[:, 1:]) * np.sign(d[:, :-1]) < 0
    at_turn = pos[:, 1:-1][turn]
    assert turn.sum() > 50  # bounces do happen in 60 frames
    assert np.all((at_turn == 0.0) | (at_turn == 1.0))


def test_rendered_digits_lie_inside_the_frame():
    digits = load_sklearn_digits(28)
    rng = np.random.default_rng(1)
    pos = trajectories(10, 20, 1, 0.1, rng)
    which = rng.integers(0, len(digits), (10, 1))
    frames = render_digits(digits, pos, 64, which)
    # one digit per frame: nothing of it is cut off at any time, at a border or not
    mass = frames.sum(axis=(2, 3))
    expected = np.broadcast_to(digits[which[:, 0]].sum(axis=(1, 2))[:, None], mass.shape)
    np.testing.assert_allclose(mass, expected, rtol=1e-5)
    # two digits are combined by their maximum
    pos2 = np.zeros((1, 1, 2, 2))
    both = render_digits(digits, pos2, 64, np.array([[0, 1]]))[0, 0, :28, :28]
    np.testing.assert_array_equal(both, np.maximum(digits[0], digits[1]))


def test_sklearn_digits_have_mnist_geometry():
    d = load_sklearn_digits(28, 20)
    assert d.shape == (1797, 28, 28) and d.dtype == np.float32
    assert d.min() >= 0.0 and d.max() <= 1.0 and d.max() > 0.9
    assert np.all(d[:, :4] == 0) and np.all(d[:, -4:] == 0)
    assert np.all(d[:, :, :4] == 0) and np.all(d[:, :, -4:] == 0)


def test_digit_pools_keep_test_digits_out_of_training():
    pools = digit_pools("sklearn", seed=3)
    assert [len(pools[s]) for s in ("train", "val", "test")] == [1437, 1437, 360]
    np.testing.assert_array_equal(pools["train"], pools["val"])
    flat = {k: {v.tobytes() for v in pools[k]} for k in ("train", "test")}
    assert not flat["train"] & flat["test"]
    digits = load_sklearn_digits()
    order = np.random.default_rng(3).permutation(len(digits))  # the documented split
    np.testing.assert_array_equal(pools["test"], digits[order[1437:]])
    again = digit_pools("sklearn", seed=3)
    assert np.array_equal(again["test"], pools["test"])
    assert not np.array_equal(digit_pools("sklearn", seed=4)["test"], pools["test"])
    with pytest.raises(ValueError, match="28 px"):
        digit_pools("mnist", seed=0, digit_size=20, mnist_root=".")
    with pytest.raises(ValueError, match="unknown digit source"):
        digit_pools("emnist", seed=0)


@pytest.mark.parametrize("rank", [1, 3, 6])
def test_background_has_the_configured_rank(rank):
    digits = load_sklearn_digits(28)
    data = make_moving_digits(digits, 3, rank=rank, background_rms=0.5, noise_std=0.02, seed=rank)
    low = data.low_rank.astype(np.float64)
    for frame in low.reshape(-1, 64, 64)[::7]:
        assert np.linalg.matrix_rank(frame, tol=1e-6 * np.abs(frame).max()) == rank
    for seq in low:  # the 4096 x 20 Casorati matrix
        assert np.linalg.matrix_rank(seq.reshape(20, -1).T, tol=1e-4) == rank
    np.testing.assert_allclose(np.sqrt((low**2).mean(axis=(1, 2, 3))), 0.5, rtol=1e-5)
    noise = data.x - data.low_rank - data.sparse
    assert abs(noise.std() - 0.02) < 1e-3
    assert data.sparse.min() >= 0 and 0.02 < (data.sparse > 0).mean() < 0.3


def test_generator_is_seeded():
    digits = load_sklearn_digits(28)
    a, b = (make_moving_digits(digits, 2, seed=5) for _ in range(2))
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, make_moving_digits(digits, 2, seed=6).x)


# ------------------------------------------------------------------- arrangements, proxes


def test_arrangements_round_trip():
    seq = torch.randn(3, 5, 8, 8)
    frames = as_samples(seq, "frame")
    assert frames.shape == (15, 1, 8, 8)
    assert torch.equal(as_matrix(frames, "frame")[7], seq[1, 2])
    video = as_samples(seq, "video")
    cas = as_matrix(video, "video")
    assert cas.shape == (3, 64, 5)
    assert torch.equal(cas[2, :, 4], seq[2, 4].flatten())  # column t is frame t
    for x, mode in ((frames, "frame"), (video, "video")):
        assert torch.equal(from_matrix(as_matrix(x, mode), mode, x.shape), x)


@pytest.mark.parametrize("mode", ["frame", "video"])
def test_sparse_prox_groups_follow_the_arrangement(mode):
    """l1 is the elementwise soft threshold; l12 shrinks frame columns / pixel time series."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1 if mode == "frame" else 6, 8, 8, generator=g, dtype=torch.float64)
    tau = 2.0
    torch.testing.assert_close(sparse_prox(x, tau, "l1", mode), soft_threshold(x, tau))
    z = sparse_prox(x, tau, "l12", mode)
    expected = torch.zeros_like(x)
    for b in range(x.shape[0]):
        if mode == "frame":
            groups = [(b, 0, slice(None), j) for j in range(8)]  # columns of the frame
        else:
            groups = [(b, slice(None), i, j) for i in range(8) for j in range(8)]  # time series
        for idx in groups:
            v = x[idx]
            n = torch.linalg.vector_norm(v)
            expected[idx] = v * max(0.0, 1 - tau / float(n))
    torch.testing.assert_close(z, expected)
    assert 0 < (z == 0).double().mean() < 1  # some groups zeroed, some kept


# ------------------------------------------------------------------------- SVT gradients


def test_stable_svt_gradient_matches_autograd_and_stays_finite():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 9, 6, generator=g, dtype=torch.float64, requires_grad=True)
    tau = torch.tensor([0.3, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, t: svt(a, t, stable_grad=True), (x, tau))
    w = torch.randn(3, 9, 6, generator=g, dtype=torch.float64)
    ref = torch.autograd.grad((svt(x, tau) * w).sum(), (x, tau))
    got = torch.autograd.grad((svt(x, tau, stable_grad=True) * w).sum(), (x, tau))
    for a, b in zip(ref, got, strict=True):
        torch.testing.assert_close(a, b)
    # repeated and zero singular values: autograd through the SVD gives NaN, ours does not
    rep = torch.zeros(2, 6, 4, dtype=torch.float64)
    rep[0, :4] = 2 * torch.eye(4, dtype=torch.float64)
    rep = rep.requires_grad_(True)
    svt(rep, 0.5).sum().backward()
    assert not torch.isfinite(rep.grad).all()
    rep.grad = None
    svt(rep, 0.5, stable_grad=True).sum().backward()
    assert torch.isfinite(rep.grad).all()
    # d/dX sum(SVT(2I)) = I-block of ones where sigma > tau, times f/sigma off the range
    torch.testing.assert_close(rep.grad[0, :4], torch.ones(4, 4, dtype=torch.float64))
    torch.testing.assert_close(rep.grad[0, 4:], torch.full((2, 4), 0.75, dtype=torch.float64))


@pytest.mark.parametrize("mode", ["frame", "video"])
def test_network_gradients_finite_at_degenerate_inputs(mode):
    model = UnfoldedRPCA(3, "l12", mode, 3, lowrank_threshold=0.1, sparse_threshold=0.1)
    x = torch.zeros(2, 1 if mode == "frame" else 4, 8, 8)
    x[0, :, :, 2] = 1.0  # rank one, all other singular values repeated zeros
    low, sparse = model(x)
    rpca_loss(low, sparse, torch.zeros_like(x), x).backward()
    for p in model.parameters():
        assert torch.isfinite(p.grad).all()


# ---------------------------------------------------------------------- inference kernels


def _spectrum_matrices(shape, ratios, dtype, seed=0, transposed=False):
    """Matrices with sigma_1 = ratio and the other singular values clustered around 1."""
    g = torch.Generator().manual_seed(seed)
    m, n = shape
    r = min(m, n)
    out = []
    for ratio in ratios:
        u, _ = torch.linalg.qr(torch.randn(m, r, generator=g, dtype=torch.float64))
        v, _ = torch.linalg.qr(torch.randn(n, r, generator=g, dtype=torch.float64))
        s = (1 + 0.05 * torch.randn(r, generator=g, dtype=torch.float64)).abs()
        s[0], s[1] = ratio, ratio / 3
        out.append((u * s) @ v.T)
    x = torch.stack(out).to(dtype)
    return x.mT.contiguous().mT if transposed else x  # transposed: a column-major view


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("shape", [(30, 30), (200, 12), (12, 200)])
def test_svt_gram_route_equals_svd_route(shape, transposed):
    """Float64: the Gram route is the same map as the SVD route to float64 rounding."""
    x = _spectrum_matrices(shape, [3.0, 10.0, 30.0], torch.float64, transposed=transposed)
    tau = torch.tensor([1.0, 1.02, 0.5], dtype=torch.float64)  # per matrix, at the cluster
    torch.testing.assert_close(svt(x, tau, method="gram"), svt(x, tau), rtol=0, atol=1e-10)
    torch.testing.assert_close(svt(x, 0.0, method="gram"), x, rtol=0, atol=1e-10)
    assert torch.equal(svt(torch.zeros(2, *shape), 0.5, method="gram"), torch.zeros(2, *shape))
    assert torch.equal(svt(x, 1e3, method="gram"), torch.zeros_like(x))  # nothing kept
    with pytest.raises(ValueError, match="no gradient"):
        svt(x.clone().requires_grad_(True), 1.0, method="gram")
    with pytest.raises(ValueError, match="unknown svt method"):
        svt(x, 1.0, method="qr")


@pytest.mark.parametrize("shape", [(64, 64), (4096, 20), (20, 64)])
def test_svt_gram_route_float32_error_bound(shape):
    """Float32: error about eps * sigma_1/tau of ||X||_2 (SVD: eps); float64 beyond 100."""
    ratios = [10.0, 30.0, 90.0, 1000.0]  # the last one exceeds the float32 bound
    x = _spectrum_matrices(shape, ratios, torch.float32, seed=1, transposed=shape[0] > 1000)
    ref = svt(x.double(), 1.0)
    norm = torch.linalg.matrix_norm(x.double(), 2)
    err = torch.linalg.matrix_norm(svt(x, 1.0, method="gram").double() - ref) / norm
    eps = torch.finfo(torch.float32).eps
    bound = 20 * eps * torch.tensor([10.0, 30.0, 90.0, 1.0], dtype=torch.float64)
    assert torch.all(err <= bound), (err, bound)  # the float64 fallback is float32-exact
    err_svd = torch.linalg.matrix_norm(svt(x, 1.0).double() - ref) / norm
    assert torch.all(err_svd <= 10 * eps)  # the SVD route's error, for comparison


@pytest.mark.parametrize(("channels", "size"), [(1, 5), (3, 5), (3, 1), (2, 17)])
def test_inference_convolution_is_conv2d(channels, size):
    from deepunfold.unfolded.rpca import _conv2d

    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, channels, 24, 24, generator=g)
    w = torch.randn(2, channels, size, size, generator=g)
    ref = torch.nn.functional.conv2d(x.double(), w.double(), padding=size // 2)
    with torch.no_grad():
        torch.testing.assert_close(_conv2d(x, w, size // 2).double(), ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("prox", ["l1", "l12"])
@pytest.mark.parametrize("mode", ["frame", "video"])
def test_inference_forward_equals_training_forward(mode, prox):
    """Inference kernels (Gram SVT, NNPACK, layer-1 shortcut) compute the training-time map."""
    x = _small_data(mode, 3, seed=2)[0]
    torch.manual_seed(0)
    mu1 = 0.1 * float(torch.linalg.matrix_norm(as_matrix(x, mode), 2).mean())
    model = UnfoldedRPCA(4, prox, mode, 5, 0.5, mu1, 0.1 if prox == "l1" else 0.6)
    with torch.no_grad():
        model.weight.add_(0.02 * torch.randn_like(model.weight))  # not the identity kernels
    train_low, train_sparse = model(x)  # gradients enabled: SVD with stable backward, oneDNN
    with torch.inference_mode():
        low, sparse = model(x)
    assert train_low.requires_grad and not low.requires_grad
    torch.testing.assert_close(low, train_low.detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(sparse, train_sparse.detach(), rtol=1e-4, atol=1e-5)
    # both thresholds bite: some zeros in S, L of low but non-zero rank
    rank = torch.linalg.matrix_rank(as_matrix(low, mode))
    assert (sparse == 0).any() and 0 < rank.max() < min(as_matrix(low, mode).shape[-2:])


# ---------------------------------------------------------------------------------- PCP


@pytest.mark.parametrize("svt_method", ["gram", "svd"])
def test_pcp_recovers_low_rank_plus_sparse_exactly(svt_method):
    """Candes et al. (2011), table 1 setting: n = 500, rank 5 %, 5 % corruptions of +-1."""
    n, r = 500, 25
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, r, generator=g, dtype=torch.float64) / n**0.5
    b = torch.randn(n, r, generator=g, dtype=torch.float64) / n**0.5
    low = a @ b.T
    support = torch.rand(n, n, generator=g, dtype=torch.float64) < 0.05
    signs = torch.where(torch.rand(n, n, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
    sparse = support * signs
    res = pcp((low + sparse)[None], tol=1e-7, svt_method=svt_method)
    assert bool(res.converged[0])
    err = torch.linalg.matrix_norm(res.low_rank[0] - low) / torch.linalg.matrix_norm(low)
    assert err < 1e-5, float(err)
    assert numerical_rank(res.low_rank, 1e-6)[0] == r
    assert torch.equal(res.sparse[0].abs() > 0.5, support)


def test_pcp_svt_methods_agree():
    """The Gram route (default) takes the SVD route's iterations to the same point."""
    g = torch.Generator().manual_seed(2)
    low = torch.randn(4, 64, 3, generator=g, dtype=torch.float64) @ torch.randn(
        4, 3, 20, generator=g, dtype=torch.float64
    )
    sparse = (torch.rand(4, 64, 20, generator=g) < 0.05).double() * 3.0
    x = low + sparse
    gram, svd = pcp(x, svt_method="gram"), pcp(x, svt_method="svd")
    assert torch.equal(gram.iterations, svd.iterations)
    assert bool(gram.converged.all())
    err = torch.linalg.matrix_norm(gram.low_rank - svd.low_rank) / torch.linalg.matrix_norm(x)
    assert float(err.max()) < 1e-8


def test_pcp_batch_equals_single():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 30, 20, generator=g, dtype=torch.float64)
    x[1] *= 5  # a differently scaled problem that stops at another iteration
    batch = pcp(x)
    for i in range(3):
        one = pcp(x[i : i + 1])
        assert int(one.iterations[0]) == int(batch.iterations[i])
        torch.testing.assert_close(one.low_rank[0], batch.low_rank[i])
    assert bool(batch.converged.all())
    residual = torch.linalg.matrix_norm(x - batch.low_rank - batch.sparse)
    assert torch.all(residual / torch.linalg.matrix_norm(x) < 1e-7)


# ------------------------------------------------------------------------------ network


def _small_data(mode, n=6, seed=0):
    digits = load_sklearn_digits(12, 8)
    d = make_moving_digits(digits, n, n_frames=6, size=24, rank=2, seed=seed)
    return tuple(as_samples(a, mode) for a in (d.x, d.low_rank, d.sparse))


@pytest.mark.parametrize("prox", ["l1", "l12"])
@pytest.mark.parametrize("mode", ["frame", "video"])
def test_untrained_network_is_ista_rpca(mode, prox):
    """With its initial kernels the network computes K steps of ISTA-RPCA (step t)."""
    x = _small_data(mode, 2)[0].double()
    t, mu1, mu2 = 0.5, 0.8, 0.1
    model = UnfoldedRPCA(3, prox, mode, 5, t, mu1, mu2).double()
    low, sparse = torch.zeros_like(x), torch.zeros_like(x)
    for _ in range(3):
        new_low = from_matrix(
            svt(as_matrix((1 - t) * low - t * sparse + t * x, mode), mu1), mode, x.shape
        )
        sparse = sparse_prox(-t * low + (1 - t) * sparse + t * x, mu2, prox, mode)
        low = new_low
    got = model(x)
    torch.testing.assert_close(got[0], low)
    torch.testing.assert_close(got[1], sparse)


@pytest.mark.parametrize("prox", ["l1", "l12"])
@pytest.mark.parametrize("mode", ["frame", "video"])
def test_one_training_step_lowers_the_loss(mode, prox):
    x, low, sparse = _small_data(mode)
    model = UnfoldedRPCA(4, prox, mode, 3, 0.5, 0.5, 0.1)
    with torch.no_grad():
        before = float(rpca_loss(*model(x), low, sparse))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rpca_loss(*model(x), low, sparse).backward()
    opt.step()
    with torch.no_grad():
        after = float(rpca_loss(*model(x), low, sparse))
    assert after < 0.999 * before


@pytest.mark.parametrize("threshold_param", ["log", "raw"])
def test_training_is_deterministic_and_early_stops(threshold_param):
    train, val = _small_data("frame", 4, seed=0), _small_data("frame", 2, seed=1)

    def run(seed):
        torch.manual_seed(123)
        model = UnfoldedRPCA(2, "l1", "frame", 3, 0.5, 1.0, 0.2, threshold_param)
        res = train_unfolded(
            model, train, val, epochs=3, batch_size=5, lr=1e-2, patience=2, seed=seed
        )
        return model, res.history

    (m1, h1), (m2, h2), (_, h3) = run(0), run(0), run(1)
    for k, v in m1.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k
    assert [h["val_loss"] for h in h1] == [h["val_loss"] for h in h2]
    assert [h["train_loss"] for h in h1] != [h["train_loss"] for h in h3]  # shuffling matters
    # the kept weights are those of the best validation epoch
    best = min(h1, key=lambda h: h["val_loss"])
    np.testing.assert_allclose(m1.thresholds.detach().numpy(), best["thresholds"])
    assert h1[-1]["val_loss"] < h1[0]["val_loss"]


def test_history_table_flattens_the_thresholds_per_layer():
    from deepunfold.unfolded.rpca import history_table

    train, val = _small_data("frame", 4, seed=0), _small_data("frame", 2, seed=1)
    model = UnfoldedRPCA(3, "l1", "frame", 3, 0.5, 1.0, 0.2)
    res = train_unfolded(model, train, val, epochs=2, batch_size=5, lr=1e-2, patience=2, seed=0)
    table = history_table(res.history)
    assert list(table.columns) == [
        "epoch",
        "train_loss",
        "val_loss",
        "best",
        "mu1_1",
        "mu2_1",
        "mu1_2",
        "mu2_2",
        "mu1_3",
        "mu2_3",
    ]
    assert list(table.epoch) == [0, 1, 2] and bool(table.best.iloc[0])
    assert table.mu2_3.iloc[-1] == pytest.approx(float(res.history[-1]["thresholds"][2, 1]))


def test_initial_thresholds():
    # tuned: the untrained ISTA-RPCA's t * lambda; a number: both thresholds
    assert initial_thresholds("tuned", 0.5, 3.0, 0.2) == (1.5, 0.1)
    assert initial_thresholds(1.0, 0.5, 3.0, 0.2) == (1.0, 1.0)
    with pytest.raises(ValueError, match="tuned"):
        initial_thresholds("grid", 0.5, 3.0, 0.2)
    with pytest.raises(ValueError, match="positive"):
        initial_thresholds(0.0, 0.5, 3.0, 0.2)


def test_checkpoint_round_trip_and_layer_statistics(tmp_path):
    from deepunfold.train.checkpoint import load_model, save_model

    x = _small_data("video", 2)[0]
    model = UnfoldedRPCA(3, "l12", "video", 3, 0.5, 2.0, 0.3)
    with torch.no_grad():
        model.log_threshold.add_(0.1)
    save_model(model, tmp_path / "m.pt")
    again = load_model(tmp_path / "m.pt", UnfoldedRPCA)
    assert again.config == model.config
    torch.testing.assert_close(again(x)[0], model(x)[0])
    stats = layer_statistics(model, x, batch_size=1)
    assert stats["singular_values"].shape == (3, 6)  # one per frame of the Casorati matrix
    with torch.inference_mode():  # the kernels layer_statistics runs
        _, _, layers = model(x, return_layers=True)
    s = torch.linalg.svdvals(as_matrix(layers[1][0], "video")).mean(0)
    np.testing.assert_allclose(stats["singular_values"][1], s.detach().numpy(), rtol=1e-5)
    s_last = layers[-1][1]
    assert stats["zero_fraction"][-1] == pytest.approx(float((s_last == 0).double().mean()))


def test_metrics():
    ref = torch.ones(4, 1, 3, 3)
    assert nmse_db(ref * 1.1, ref) == pytest.approx(-20.0)
    m = torch.diag(torch.tensor([5.0, 1.0, 1e-5]))[None]
    assert int(numerical_rank(m, 1e-3)[0]) == 2
    group = group_soft_threshold(torch.ones(1, 2, 2), 10.0)
    assert torch.all(group == 0)


def test_mnist_loader_reads_torchvision_raw_files(tmp_path):
    """The full study's path, on tiny files in MNIST's idx format (no network here)."""
    import struct

    from deepunfold.data.digits import load_mnist_digits
    from deepunfold.io import MissingResourceError

    with pytest.raises(MissingResourceError, match="train-images-idx3-ubyte"):
        load_mnist_digits(tmp_path, train=True)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {
        p: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for p, n in (("train", 5), ("t10k", 3))
    }
    for prefix, img in images.items():
        n = len(img)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + img.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, n) + bytes(range(n))
        )
    train = load_mnist_digits(tmp_path, train=True)
    assert train.shape == (5, 28, 28) and train.dtype == np.float32
    np.testing.assert_allclose(train, images["train"] / 255.0, rtol=1e-6)
    assert load_mnist_digits(tmp_path, train=False).shape == (3, 28, 28)


def test_diverging_training_fails_clearly():
    """NaN in the loss stops training with a clear message (no weights are kept)."""
    from deepunfold.train.loop import NonFiniteError

    train, val = _small_data("frame", 4, seed=0), _small_data("frame", 2, seed=1)
    low = train[1].clone()
    low[0].fill_(float("nan"))  # a corrupt target: the loss, not the SVD, meets the NaN
    model = UnfoldedRPCA(2, "l1", "frame", 3, 0.5, 1.0, 0.2, "log")
    with pytest.raises(NonFiniteError, match="training loss of UnfoldedRPCA"):
        train_unfolded(
            model,
            (train[0], low, train[2]),
            val,
            epochs=1,
            batch_size=len(low),
            lr=1e-2,
            patience=1,
            seed=0,
        )
