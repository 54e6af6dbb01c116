"""Task 6: the unfolded ML-ISTA network (shapes, adjoints, same parameters for every k)."""

import numpy as np
import pytest
import torch

from deepunfold.data.digits import load_digits_split, load_mnist
from deepunfold.io import MissingResourceError
from deepunfold.solvers.multilayer import layered_thresholding, matrix_layer, ml_ista_step
from deepunfold.solvers.proximal_gradient import power_iteration
from deepunfold.train.loop import count_parameters
from deepunfold.unfolded.mlista import MLISTANet, train_classifier

# (input shape, channels, kernels, strides, paddings): the full study's MNIST net, the demo's
# digits net, and an odd size that needs output padding in the transposed convolutions
CONFIGS = {
    "mnist": ((1, 28, 28), [32, 64, 128], [6, 6, 4], [2, 2, 1], [0, 0, 0]),
    "digits": ((1, 8, 8), [16, 32, 64], [3, 3, 3], [1, 2, 2], [1, 1, 1]),
    "odd": ((2, 9, 11), [3, 5], [3, 2], [2, 3], [1, 0]),
}


# small batched loops run fastest (and most repeatably) on one thread
pytestmark = pytest.mark.usefixtures("one_thread")


def net(name, k=0, seed=0, **kw):
    shape, ch, ks, st, pd = CONFIGS[name]
    return MLISTANet(shape, ch, ks, st, pd, unfoldings=k, seed=seed, **kw)


@pytest.mark.parametrize("name", CONFIGS)
def test_parameter_counts_are_equal_across_unfoldings(name):
    shape, ch, ks, _, _ = CONFIGS[name]
    unfoldings = [0, 3] if name == "mnist" else [0, 1, 2, 5]  # the MNIST net: ~2 s to build
    counts = {k: count_parameters(net(name, k)) for k in unfoldings}
    assert len(set(counts.values())) == 1, counts
    m = net(name)
    code = int(np.prod(m.shapes[-1]))
    cin = [shape[0], *ch[:-1]]
    expected = (
        sum(co * ci * k * k for co, ci, k in zip(ch, cin, ks, strict=True))  # filters
        + len(ch)  # one step per layer
        + sum(ch)  # one threshold per channel
        + code * 10
        + 10  # linear classifier
    )
    assert counts[0] == expected


def test_mnist_shapes():
    m = net("mnist")
    assert m.shapes == [(1, 28, 28), (32, 12, 12), (64, 4, 4), (128, 1, 1)]
    assert m(torch.randn(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize("name", CONFIGS)
def test_synthesis_is_the_adjoint_of_analysis(name):
    m = net(name, seed=1)
    gen = torch.Generator().manual_seed(0)
    for i in range(len(m.weights)):
        v = torch.randn(4, *m.shapes[i], generator=gen)
        g = torch.randn(4, *m.shapes[i + 1], generator=gen)
        with torch.no_grad():
            lhs = (m.analysis(i, v) * g).sum()
            rhs = (v * m.synthesis(i, g)).sum()
        assert torch.allclose(lhs, rhs, rtol=1e-4), (i, lhs, rhs)
        # the filters start with unit operator norm (steps start at 1 = 1/||D_i||^2)
        sigma = power_iteration(m._dense(m.weights[i].detach(), i), tol=1e-9)
        assert sigma == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("k", [0, 1, 3])
def test_encoder_is_ml_ista_on_the_dense_dictionaries(k):
    """The conv encoder = forward pass + k ML-ISTA steps on the same dictionaries as matrices."""
    m = net("odd", k=k, seed=2, init_threshold=0.05)
    x = torch.randn(5, *m.shapes[0], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        codes = m.encode(x)
        mats = [m._dense(W, i).T for i, W in enumerate(m.weights)]  # D_i, (in, out)
        taus = [
            t.flatten().repeat_interleave(int(np.prod(m.shapes[i + 1][1:])))
            for i, t in enumerate(m.thresholds)
        ]
        layers, steps = [matrix_layer(D) for D in mats], list(m.steps)
        xf = x.flatten(1)
        ref = layered_thresholding(xf, layers, taus, steps, nonneg=True)
        for _ in range(k):
            ref = ml_ista_step(xf, ref[-1], layers, steps, taus, nonneg=True)
    for c, r in zip(codes, ref, strict=True):
        assert torch.allclose(c.flatten(1), r, atol=1e-5)
        assert (c >= 0).all()
    assert (codes[-1] != 0).any()


def test_unfoldings_change_the_output_not_the_parameters():
    a, b = net("digits", k=0, seed=3), net("digits", k=2, seed=3)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))
        assert torch.allclose(b.encode(x, unfoldings=0)[-1], a.encode(x)[-1])


def test_bad_architecture():
    with pytest.raises(ValueError, match="one entry per layer"):
        MLISTANet((1, 8, 8), [4, 8], [3], [1, 1], [0, 0])
    with pytest.raises(ValueError, match="shrinks"):
        MLISTANet((1, 8, 8), [4], [9], [1], [0])


def test_training_on_digits_learns():
    data = load_digits_split(0.25, seed=0)
    assert data.in_shape == (1, 8, 8) and len(data.y_test) == 450
    torch.manual_seed(0)
    m = MLISTANet(data.in_shape, [8, 16, 32], [3, 3, 3], [1, 2, 2], [1, 1, 1], unfoldings=1)
    res = train_classifier(m, data, epochs=4, batch_size=64, lr=3e-3, seed=0)
    assert len(res.history) == 4
    assert res.metrics["test_accuracy"] > 0.85, res.history
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]


def _write_idx(path, array, magic):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(magic.to_bytes(4, "big"))
        for d in array.shape:
            f.write(int(d).to_bytes(4, "big"))
        f.write(array.astype(np.uint8).tobytes())


def test_load_mnist_reads_torchvision_files(tmp_path):
    with pytest.raises(MissingResourceError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    for split, n in [("train", 12), ("t10k", 5)]:
        _write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 2051)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n), 2049)
    data = load_mnist(tmp_path)
    assert data.x_train.shape == (12, 1, 28, 28) and data.x_test.shape == (5, 1, 28, 28)
    assert abs(float(data.x_train.mean())) < 1e-5  # standardised with the training stats
    assert data.y_train.dtype == torch.long
