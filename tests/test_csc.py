"""The CSC layer (SDNet), the ResNet pair with equal parameter counts, and Res-CSC."""

import pytest
import torch

from deepunfold.ops.prox import soft_threshold
from deepunfold.solvers.proximal_gradient import fista, power_iteration
from deepunfold.train.loop import count_parameters
from deepunfold.unfolded.csc import (
    CSCLayer,
    ResCSCNet,
    conv_matrix,
    res_csc_forward,
    resnet,
    set_test_lambda,
)
from deepunfold.unfolded.mlista import MLISTANet

pytestmark = pytest.mark.usefixtures("one_thread")


def identity_layer(channels=2, **kw):
    layer = CSCLayer(channels, channels, kernel_size=3, **kw)
    with torch.no_grad():
        layer.weight.zero_()
        for c in range(channels):
            layer.weight[c, c, 1, 1] = 1.0
    return layer


@pytest.mark.parametrize("nonneg", [False, True])
def test_identity_dictionary_reduces_to_the_soft_threshold(nonneg):
    x = torch.randn(3, 2, 7, 6, generator=torch.Generator().manual_seed(0))
    for n_iter in (1, 5):
        layer = identity_layer(lam=0.3, n_iter=n_iter, nonneg=nonneg)
        out = layer(x)
        assert float(layer.lipschitz) == pytest.approx(1.0, rel=1e-6)
        torch.testing.assert_close(out, soft_threshold(x, 0.3, nonneg=nonneg))


def test_operator_power_iteration_matches_the_explicit_matrix():
    layer = CSCLayer(2, 5, kernel_size=3, stride=2, seed=1)
    D = conv_matrix(layer, (2, 9, 8))
    # D^T as a convolution is the transpose of the explicit D
    x = torch.randn(1, 2, 9, 8)
    torch.testing.assert_close(layer.analysis(x).flatten(), D.T @ x.flatten())
    L = layer.refresh_lipschitz((2, 9, 8))
    assert L == pytest.approx(float(torch.linalg.matrix_norm(D.double(), 2)) ** 2, rel=1e-4)
    assert power_iteration(D) ** 2 == pytest.approx(L, rel=1e-4)


@pytest.mark.parametrize(("nonneg", "stride"), [(False, 1), (True, 1), (False, 2)])
def test_long_run_reaches_the_convolutional_lasso_minimiser(nonneg, stride):
    torch.manual_seed(0)
    shape = (2, 8, 8)
    layer = CSCLayer(
        2,
        4,
        kernel_size=3,
        stride=stride,
        lam=0.05,
        n_iter=2,
        n_iter_eval=3000,
        nonneg=nonneg,
        seed=3,
    ).double()
    x = torch.randn(3, *shape, dtype=torch.float64)
    layer.eval()
    g = layer(x)
    D = conv_matrix(layer, shape)
    lam = float(layer.lam)  # 0.05 as stored (float32, then converted)
    ref = fista(x.flatten(1), D, lam, max_iter=20000, tol=1e-13, nonneg=nonneg)
    obj = layer.objective(x, g)
    torch.testing.assert_close(obj, ref.objective, rtol=1e-8, atol=0)
    # the Lasso's fit D g is unique even where (overcomplete D) the code may not be; strong
    # convexity in D g bounds ||D(g - g*)||^2 by twice the objective gap (here ~1e-8)
    torch.testing.assert_close(g.flatten(1) @ D.T, ref.z @ D.T, rtol=0, atol=2e-4)
    assert (g != 0).any() and (g == 0).any()  # a genuinely sparse solution


def test_gradients_are_finite_for_atoms_and_a_learned_lambda():
    layer = CSCLayer(3, 8, lam=0.1, learn_lambda=True, n_iter=4, nonneg=False)
    x = torch.randn(4, 3, 10, 10)
    layer(x).square().sum().backward()
    for p in (layer.weight, layer.log_lam):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_test_time_lambda_and_iterations():
    layer = CSCLayer(1, 4, lam=0.1, n_iter=2, n_iter_eval=10, seed=0)
    x = torch.rand(2, 1, 8, 8)
    layer.eval()
    base = layer(x)
    set_test_lambda(layer, 0.5)
    sparser = layer(x)
    assert (sparser != 0).sum() < (base != 0).sum()
    set_test_lambda(layer, None)
    torch.testing.assert_close(layer(x), base)
    layer.train()
    assert not torch.equal(layer(x), base)  # two iterations while training, ten in eval


def test_sdnet_and_cnn_have_equal_parameter_counts():
    kw = dict(in_channels=3, n_classes=10, widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2))
    cnn, sdnet = resnet("cnn", **kw), resnet("sdnet", **kw, csc={"lam": 0.1})
    assert count_parameters(cnn) == count_parameters(sdnet) == 11_173_962  # ResNet-18
    small = dict(in_channels=1, n_classes=10, widths=(8, 16), blocks=(1, 1))
    out = resnet("sdnet", **small)(torch.rand(5, 1, 16, 16))
    assert out.shape == (5, 10) and torch.isfinite(out).all()
    learned = resnet("sdnet", **small, csc={"learn_lambda": True})
    assert count_parameters(learned) == count_parameters(resnet("cnn", **small)) + 1


def test_res_csc_forward_is_equation_3():
    torch.manual_seed(0)
    net = ResCSCNet((1, 6, 6), [4, 4, 4], [3, 3, 3], [1, 1, 1], [1, 1, 1])
    assert net.skip_layers() == [3]  # gamma_3 starts from gamma_1 (gamma_0 has 1 channel)
    x = torch.randn(2, 1, 6, 6)
    layers, mu, tau = net.layers(), net.steps, net.thresholds
    g = res_csc_forward(x, layers, tau, mu)
    g1 = torch.relu(mu[0] * layers[0].analysis(x) - tau[0])
    g2 = torch.relu(mu[1] * layers[1].analysis(g1) - tau[1])
    g3 = torch.relu(g1 + mu[2] * layers[2].analysis(g2 - layers[2].synthesis(g1)) - tau[2])
    for a, b in zip(g, [g1, g2, g3], strict=True):
        torch.testing.assert_close(a, b)
    plain = MLISTANet((1, 6, 6), [4, 4, 4], [3, 3, 3], [1, 1, 1], [1, 1, 1])
    assert count_parameters(plain) == count_parameters(net)
    assert not torch.allclose(plain.encode(x)[-1], g3)  # the same weights, a different pass


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"model": {"blocks": [2, 2]}}, "csc.model.blocks"),
        ({"res_csc": {"strides": [1, 1]}}, "csc.res_csc.strides"),
        (
            {"data": {"dataset": "digits", "digits": {"inner_size": 20}}},
            "csc.data.digits.inner_size",
        ),
    ],
)
def test_config_rules_between_csc_keys_name_the_key(patch, key):
    from deepunfold.pipeline.config import ConfigError, validate_config

    with pytest.raises(ConfigError, match=f"config key '{key}'"):
        validate_config({"csc": patch})
    validate_config({"csc": {**patch, "enabled": False}})  # a disabled stage is not checked


def test_cifar10_training_batches_are_a_download_of_their_own(tmp_path):
    from deepunfold.pipeline.resources import TORCHVISION, download_torchvision

    info = TORCHVISION["CIFAR10"]
    assert info["files"] == ["cifar-10-batches-py/test_batch", "cifar-10-batches-py/batches.meta"]
    for f in info["train_files"]:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"")
    # present: returned without a download (and without the test files)
    got = download_torchvision("CIFAR10", tmp_path, part="train_files")
    assert got == [tmp_path / f for f in info["train_files"]]


def test_robustness_study_picks_the_best_validation_lambda_per_noise_level():
    from deepunfold.data.images import ImageData
    from deepunfold.studies.csc import robustness_study, trained_lambda
    from deepunfold.train.loop import accuracy

    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    x = torch.randn(60, 1, 8, 8, generator=g) + y[:, None, None, None].float()
    data = ImageData(x[:20], y[:20], x[20:40], y[20:40], x[40:], y[40:], "toy")
    torch.manual_seed(0)
    cnn = resnet("cnn", 1, 3, (4,), (1,)).eval()
    sdnet = resnet("sdnet", 1, 3, (4,), (1,), csc={"lam": 0.1}).eval()
    table, sweep = robustness_study(cnn, sdnet, data, [0.0, 0.5], [2.0, 4.0], seed=3)
    lam0 = trained_lambda(sdnet)
    assert lam0 == pytest.approx(0.1)
    assert list(table.model) == ["cnn", "sdnet", "sdnet_tuned"] * 2
    assert len(sweep) == 2 * 3 and table["lambda"].isna().sum() == 2
    for s, rows in sweep.groupby("noise_std"):
        best = rows.sort_values(["val_accuracy", "lambda"], ascending=[False, True]).iloc[0]
        tuned = table[(table.noise_std == s) & (table.model == "sdnet_tuned")].iloc[0]
        assert tuned["lambda"] == best["lambda"] and tuned.val_accuracy == best.val_accuracy
    # the test noise is the seed + 2 draw, the same for every model
    cnn_row = table[(table.noise_std == 0.5) & (table.model == "cnn")].iloc[0]
    acc, _ = accuracy(cnn, data.x_test, data.y_test, noise_std=0.5, seed=5)
    assert cnn_row.test_accuracy == acc
