"""The convolutional dictionary operator (`deepunfold.ops.conv_dictionary`) and its users:
adjointness, the explicit matrix, code sizes, the CSC layer / ML-ISTA network computing what
they did before the operator was shared, and the multi-layer pursuits on convolutional layers."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from deepunfold.ops.conv_dictionary import ConvDictionary
from deepunfold.solvers.multilayer import (
    conv_layer,
    layered_thresholding,
    matrix_layer,
    ml_fista,
    ml_ista,
    ml_ista_step,
    thresholds_from_lambdas,
)
from deepunfold.solvers.proximal_gradient import Momentum, power_iteration
from deepunfold.unfolded.csc import CSCLayer, ResCSCNet, conv_matrix
from deepunfold.unfolded.mlista import MLISTANet

pytestmark = pytest.mark.usefixtures("one_thread")

# (stride, padding, kernel (h, w), channels in, atoms, image height, width): strides 1-3,
# paddings 0-2, odd and even kernels and image sizes, sizes that need output padding
GEOMETRIES = [
    (1, 1, (3, 3), 2, 3, 8, 8),
    (1, 0, (2, 2), 1, 4, 7, 6),
    (2, 1, (3, 3), 2, 5, 9, 8),
    (2, 0, (4, 4), 3, 2, 10, 11),
    (3, 2, (5, 5), 1, 3, 13, 12),
    (2, 1, (3, 2), 2, 2, 7, 9),
    (3, 0, (3, 3), 2, 3, 11, 10),
]


def geometry(stride, padding, kernel, m, c, h, w, seed=0):
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(c, m, *kernel, generator=gen, dtype=torch.float64)
    return ConvDictionary(stride, padding), W, (m, h, w), gen


@pytest.mark.parametrize("geo", GEOMETRIES)
def test_synthesis_is_the_adjoint_of_analysis(geo):
    op, W, in_shape, gen = geometry(*geo)
    x = torch.randn(4, *in_shape, generator=gen, dtype=torch.float64)
    g = torch.randn(4, *op.code_shape(W, in_shape), generator=gen, dtype=torch.float64)
    Dg = op.synthesis(g, W, in_shape[-2:])
    assert Dg.shape == x.shape
    lhs = (Dg * x).flatten(1).sum(1)  # <D g, x>
    rhs = (g * op.analysis(x, W)).flatten(1).sum(1)  # <g, D^T x>
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("geo", GEOMETRIES)
def test_dense_matrix_is_the_operator_on_basis_vectors(geo):
    op, W, in_shape, gen = geometry(*geo)
    code_shape = op.code_shape(W, in_shape)
    n, p = in_shape[0] * in_shape[1] * in_shape[2], code_shape[0] * code_shape[1] * code_shape[2]
    D = op.dense(W, in_shape)
    assert D.shape == (n, p) and not D.requires_grad
    # column j = D e_j (synthesis of the code basis), row i = (D^T e_i)^T (analysis)
    codes = torch.eye(p, dtype=W.dtype).reshape(p, *code_shape)
    torch.testing.assert_close(D, op.synthesis(codes, W, in_shape[-2:]).reshape(p, n).T)
    images = torch.eye(n, dtype=W.dtype).reshape(n, *in_shape)
    torch.testing.assert_close(D, op.analysis(images, W).reshape(n, p))
    # and on a random pair, both directions
    x = torch.randn(3, *in_shape, generator=gen, dtype=W.dtype)
    g = torch.randn(3, *code_shape, generator=gen, dtype=W.dtype)
    torch.testing.assert_close(op.analysis(x, W).flatten(1), x.flatten(1) @ D)
    torch.testing.assert_close(op.synthesis(g, W, in_shape[-2:]).flatten(1), g.flatten(1) @ D.T)


@pytest.mark.parametrize(
    ("stride", "padding", "kernel"),
    [(1, 0, 3), (1, 1, 3), (2, 1, 3), (2, 0, 4), (3, 2, 5), (3, 0, 2)],
)
def test_output_size_round_trip(stride, padding, kernel):
    op = ConvDictionary(stride, padding)
    W = torch.randn(2, 1, kernel, kernel)
    for h, w in itertools.product(range(max(kernel - 2 * padding, 1), 14), repeat=2):
        code = op.code_shape(W, (1, h, w))
        g = torch.randn(1, *code)
        assert op.analysis(torch.zeros(1, 1, h, w), W).shape[1:] == code  # conv2d's own size
        pad = op.output_padding(code[1:], (h, w), W.shape[-2:])
        assert all(0 <= q < stride for q in pad)
        assert op.synthesis(g, W, (h, w)).shape == (1, 1, h, w)
    # codes that no image of that size has are refused with a message, not a cryptic error
    with pytest.raises(ValueError, match="not those of images"):
        op.synthesis(torch.randn(1, 2, 3, 3), W, (3 * stride + kernel + 5, 9))


def test_invalid_geometry():
    with pytest.raises(ValueError, match="stride"):
        ConvDictionary(0, 1)
    with pytest.raises(ValueError, match="padding"):
        ConvDictionary(1, -1)


# ----- the users compute what their own copies of the formulas computed ----------------------
def old_synthesis(g, W, stride, padding, out_hw):
    """The transposed convolution as CSCLayer and MLISTANet wrote it before the operator."""
    s, p, k = stride, padding, W.shape[-1]
    h2, w2 = g.shape[-2:]
    pad = (out_hw[0] - ((h2 - 1) * s - 2 * p + k), out_hw[1] - ((w2 - 1) * s - 2 * p + k))
    return F.conv_transpose2d(g, W, stride=s, padding=p, output_padding=pad)


@pytest.mark.parametrize(
    ("stride", "padding", "shape"), [(1, 1, (3, 8, 8)), (2, 1, (2, 9, 8)), (2, 0, (1, 11, 10))]
)
def test_csc_layer_is_unchanged(stride, padding, shape):
    layer = CSCLayer(
        shape[0], 5, kernel_size=3, stride=stride, padding=padding, lam=0.05, n_iter=3, seed=stride
    )
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    w = layer.weight
    with torch.no_grad():
        dtx = F.conv2d(x, w, stride=stride, padding=padding)
        assert torch.equal(layer.analysis(x), dtx)
        assert torch.equal(
            layer.synthesis(dtx, shape[1:]), old_synthesis(dtx, w, stride, padding, shape[1:])
        )
        # conv_matrix: the synthesis of the code basis, as it was computed before
        n = dtx[0].numel()
        eye = torch.eye(n).reshape(n, *dtx.shape[1:])
        old = old_synthesis(eye, w, stride, padding, shape[1:]).reshape(n, -1).T
        assert torch.equal(conv_matrix(layer, shape), old)
    # the forward pass: FISTA with L from the operator's power iteration, as before
    out = layer(x)
    L = (
        power_iteration(
            lambda g: old_synthesis(g, w.detach(), stride, padding, shape[1:]),
            n_iter=1000,
            tol=1e-6,
            adjoint=lambda v: F.conv2d(v, w.detach(), stride=stride, padding=padding),
            v0=torch.randn(
                (1, *dtx.shape[1:]), generator=torch.Generator().manual_seed(0), dtype=torch.float64
            ).float(),
        )
        ** 2
    )
    assert float(layer.lipschitz) == pytest.approx(L, rel=1e-6)
    assert out.shape == dtx.shape


@pytest.mark.parametrize("cls", [MLISTANet, ResCSCNet])
def test_mlista_net_is_unchanged(cls):
    shape, ch, ks, st, pd = (2, 9, 11), [3, 5], [3, 2], [2, 3], [1, 0]
    m = cls(shape, ch, ks, st, pd, unfoldings=2, seed=2)
    c, h, w = shape
    for i, (k, s, p) in enumerate(zip(ks, st, pd, strict=True)):
        h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1  # the old _conv_out
        assert m.shapes[i + 1] == (ch[i], h, w)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for i, W in enumerate(m.weights):
            s, p, (c, h, w) = st[i], pd[i], m.shapes[i]
            v = torch.randn(3, c, h, w, generator=gen)
            g = torch.randn(3, *m.shapes[i + 1], generator=gen)
            assert torch.equal(m.analysis(i, v), F.conv2d(v, W, stride=s, padding=p))
            assert torch.equal(m.synthesis(i, g), old_synthesis(g, W, s, p, (h, w)))
            eye = torch.eye(c * h * w).reshape(-1, c, h, w)
            old = F.conv2d(eye, W, stride=s, padding=p).reshape(c * h * w, -1).T
            assert torch.equal(m._dense(W, i), old)
            layer = m.layers()[i]
            assert torch.equal(layer.analysis(v), m.analysis(i, v))
            assert torch.equal(layer.synthesis(g), m.synthesis(i, g))


def test_mlista_net_layers_carry_the_gradient():
    m = MLISTANet((1, 8, 8), [3, 4], [3, 3], [1, 2], [1, 1], unfoldings=1, seed=0)
    m(torch.randn(2, 1, 8, 8)).sum().backward()
    assert all(W.grad is not None and W.grad.abs().sum() > 0 for W in m.weights)


# ----- the multi-layer pursuits on convolutional layers ---------------------------------------
@pytest.mark.parametrize("accelerated", [False, True])
def test_ml_ista_on_conv_layers_is_ml_ista_on_their_matrices(accelerated):
    """ML-ISTA / ML-FISTA run through `conv_layer` equal the dense solvers on `dense`."""
    gen = torch.Generator().manual_seed(4)
    in_shape = (2, 9, 10)
    geos = [(2, 1, 3, 4), (1, 1, 3, 6)]  # (stride, padding, kernel, atoms) per layer
    shapes, layers, mats = [in_shape], [], []
    for s, p, k, c in geos:
        op = ConvDictionary(s, p)
        W = torch.randn(c, shapes[-1][0], k, k, generator=gen, dtype=torch.float64)
        W /= power_iteration(op.dense(W, shapes[-1]))
        layers.append(conv_layer(W, s, p, shapes[-1]))
        mats.append(op.dense(W, shapes[-1]))
        shapes.append(op.code_shape(W, shapes[-1]))
    y = torch.randn(3, *in_shape, generator=gen, dtype=torch.float64)
    lams, n_iter = [0.05, 0.02], 30
    solver = ml_fista if accelerated else ml_ista
    ref = solver(y.flatten(1), mats, lams, n_iter, steps=[1.0, 1.0])
    taus = thresholds_from_lambdas(lams, [1.0, 1.0])
    # the same iterations on the convolutions, from gamma_L = 0
    g = torch.zeros(3, *shapes[-1], dtype=torch.float64)
    z, momentum = g, Momentum(accelerated)
    for _ in range(n_iter):
        g_new = ml_ista_step(y, z, layers, [1.0, 1.0], taus)[-1]
        z = momentum(g_new, g)
        g = g_new
    torch.testing.assert_close(g.flatten(1), ref.gammas[-1])
    assert (g != 0).any()
    # layered thresholding: conv layers against matrix layers
    conv = layered_thresholding(y, layers, [0.3, 0.1], nonneg=True)
    dense = layered_thresholding(
        y.flatten(1), [matrix_layer(D) for D in mats], [0.3, 0.1], nonneg=True
    )
    for a, b in zip(conv, dense, strict=True):
        torch.testing.assert_close(a.flatten(1), b)
