r"""Convolutional sparse coding inside CNNs: the CSC layer, SDNet, and Res-CSC.

**CSC layer** (SDNet's, Li et al. 2022). A convolutional dictionary :math:`D` with ``C`` atoms
of size ``k x k`` over ``M`` input channels maps a code :math:`\Gamma \in \mathbb R^{C\times
H'\times W'}` to an image :math:`D\Gamma \in \mathbb R^{M\times H\times W}` (a transposed
convolution); :math:`D^\top` is the matching strided convolution. The layer's output is an
approximate minimiser of the convolutional Lasso

.. math::
    \min_\Gamma\ \tfrac12\|x - D\Gamma\|_2^2 + \lambda\|\Gamma\|_1
    \qquad (\text{optionally } \Gamma \ge 0),

by ``n_iter`` unrolled FISTA iterations from :math:`\Gamma^0 = 0`:

.. math::
    \Gamma^{l} &= S_{\lambda/L}\big(Z^{l} - \tfrac1L D^\top(DZ^{l} - x)\big), \\
    Z^{l+1} &= \Gamma^{l} + \tfrac{t_l - 1}{t_{l+1}}(\Gamma^{l} - \Gamma^{l-1}),\quad
    t_{l+1} = \tfrac12\big(1 + \sqrt{1 + 4t_l^2}\big),

with :math:`S` the soft threshold (:func:`~deepunfold.ops.prox.soft_threshold`),
:class:`~deepunfold.solvers.proximal_gradient.Momentum` for the extrapolation and
:math:`L = \|D\|_2^2` from :func:`~deepunfold.solvers.proximal_gradient.power_iteration` on the
convolution operator itself. The first iteration, :math:`S_{\lambda/L}(D^\top x / L)`, is a
convolution followed by a (shifted) ReLU: with ``n_iter = 1`` the layer is a CNN layer. More
iterations can be run at test time (``n_iter_eval``), and :math:`\lambda` can be raised there
(:attr:`CSCLayer.test_lambda`), SDNet's robust inference. :math:`D` (and optionally
:math:`\lambda`) is learned by back-propagation through the iterations.

**SDNet** (:class:`ResNet` with ``stem="csc"``): a ResNet whose first convolution is a CSC layer;
with ``stem="conv"`` it is the same ResNet with a plain convolution and the same number of
parameters (with :math:`\lambda` fixed).

**Res-CSC** (Zhang & Zhang 2021; :class:`ResCSCNet`): in the multi-layer network of task 6
(:class:`~deepunfold.unfolded.mlista.MLISTANet`) the forward pass runs one ISTA step per layer
from :math:`\Gamma_i^0 = 0` (layered thresholding, a CNN). Res-CSC starts layer :math:`i`'s ISTA
from the previous code of the same shape, :math:`\Gamma_i^0 = \Gamma_{i-2}`:

.. math::
    \Gamma_i = S_{\tau_i}\big(\mu_i D_i^\top\Gamma_{i-1} + \Gamma_{i-2}
    - \mu_i D_i^\top D_i\Gamma_{i-2}\big),

equation (3) of the task-7 lecture slides (``seeds/003_*``; see the Glossary of
docs/architecture.md), which is a ResNet layer with the skip :math:`\Gamma_{i-2}`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deepunfold.data.images import ImageData
from deepunfold.ops.conv_dictionary import ConvDictionary
from deepunfold.ops.prox import soft_threshold
from deepunfold.solvers.multilayer import ml_ista_step
from deepunfold.solvers.proximal_gradient import Momentum, power_iteration
from deepunfold.train.checkpoint import Configurable
from deepunfold.train.loop import FitResult, accuracy, fit
from deepunfold.unfolded.mlista import MLISTANet

__all__ = [
    "CSCLayer",
    "conv_matrix",
    "set_test_lambda",
    "BasicBlock",
    "ResNet",
    "resnet",
    "train_image_classifier",
    "ResCSCNet",
    "res_csc_forward",
]


class CSCLayer(nn.Module):
    r"""Convolutional sparse coding by unrolled FISTA (module docstring).

    Input ``(batch, in_channels, H, W)``, output the code ``(batch, n_atoms, H', W')`` with
    :math:`H' = \lfloor (H + 2p - k)/s\rfloor + 1` (as a convolution with the same kernel,
    stride and padding).

    Args:
        in_channels, n_atoms, kernel_size, stride, padding: the dictionary's geometry
            (``padding`` default ``kernel_size // 2``).
        lam: :math:`\lambda`.
        learn_lambda: learn :math:`\lambda` (one scalar, kept positive through its log);
            otherwise it is a fixed buffer and the layer's parameters are the atoms only.
        n_iter: FISTA iterations while training.
        n_iter_eval: iterations in evaluation mode (default ``n_iter``).
        nonneg: non-negative codes (:math:`\Gamma \ge 0`, SDNet's choice).
        power_iters: power-iteration steps per training forward pass, warm-started from the
            previous vector (:math:`D` changes little per optimiser step); when the layer is
            put in evaluation mode :math:`L` is computed to convergence.
        seed: seed of the atoms' initialisation (a private generator).
    """

    def __init__(
        self,
        in_channels: int,
        n_atoms: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        *,
        lam: float = 0.1,
        learn_lambda: bool = False,
        n_iter: int = 2,
        n_iter_eval: int | None = None,
        nonneg: bool = True,
        power_iters: int = 2,
        seed: int = 0,
    ):
        super().__init__()
        if lam < 0 or (learn_lambda and lam == 0):
            raise ValueError(f"lambda must be non-negative (positive if learned), got {lam}")
        if n_iter < 1 or (n_iter_eval is not None and n_iter_eval < 1):
            raise ValueError(f"need at least one iteration, got {n_iter}, {n_iter_eval}")
        self.stride, self.kernel_size = int(stride), int(kernel_size)
        self.padding = kernel_size // 2 if padding is None else int(padding)
        self.n_iter, self.n_iter_eval = int(n_iter), n_iter_eval
        self.nonneg, self.power_iters = bool(nonneg), int(power_iters)
        gen = torch.Generator().manual_seed(seed)
        # the layout (C, M, k, k) serves both conv2d (D^T: M -> C channels) and
        # conv_transpose2d (D: C -> M channels); atoms start with unit norm
        w = torch.randn(n_atoms, in_channels, kernel_size, kernel_size, generator=gen)
        self.weight = nn.Parameter(w / w.flatten(1).norm(dim=1)[:, None, None, None])
        if learn_lambda:
            self.log_lam = nn.Parameter(torch.tensor(math.log(lam)))
        else:
            self.register_buffer("lam_fixed", torch.tensor(float(lam)))
        self.register_buffer("lipschitz", torch.tensor(0.0))
        self._v: torch.Tensor | None = None  # warm start of the power iteration
        self.test_lambda: float | None = None  # SDNet's robust inference: lambda at test time

    @property
    def lam(self) -> torch.Tensor:
        r"""The trained :math:`\lambda` (learned or fixed)."""
        return self.log_lam.exp() if hasattr(self, "log_lam") else self.lam_fixed

    # ----- the dictionary as a linear map ---------------------------------------------------
    @property
    def dictionary(self) -> ConvDictionary:
        """The dictionary's geometry (the operator; the atoms are :attr:`weight`)."""
        return ConvDictionary(self.stride, self.padding)

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`D^\top x`."""
        return self.dictionary.analysis(x, self.weight)

    def synthesis(self, g: torch.Tensor, out_hw: Sequence[int]) -> torch.Tensor:
        r""":math:`D\Gamma`, the adjoint of :meth:`analysis` onto images of size ``out_hw``."""
        return self.dictionary.synthesis(g, self.weight, out_hw)

    @torch.no_grad()
    def refresh_lipschitz(self, in_shape: Sequence[int], n_iter: int = 1000, tol: float = 1e-6):
        r""":math:`L = \|D\|_2^2` of the operator on images ``(M, H, W)``, by power iteration
        warm-started from the previous call's vector."""
        w = self.weight.detach()
        out_hw = tuple(in_shape[-2:])
        code_shape = (1, *self.dictionary.code_shape(w, in_shape))
        v = self._v
        if v is None or v.shape != code_shape or v.device != w.device or v.dtype != w.dtype:
            gen = torch.Generator().manual_seed(0)
            v = torch.randn(code_shape, generator=gen, dtype=torch.float64).to(w.device, w.dtype)
            n_iter = max(n_iter, 1000)  # a cold start runs to convergence
        sigma, self._v = power_iteration(
            lambda g: self.synthesis(g, out_hw),
            n_iter=n_iter,
            tol=tol,
            adjoint=self.analysis,
            v0=v,
            return_vector=True,
        )
        self.lipschitz.fill_(sigma**2)
        return float(self.lipschitz)

    def train(self, mode: bool = True):
        super().train(mode)
        if not mode and self._v is not None:
            # evaluation uses the exact step of the trained dictionary
            self.refresh_lipschitz(self._in_shape)
        return self

    # ----- inference ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._in_shape = tuple(x.shape[1:])
        if self.training or float(self.lipschitz) == 0.0:
            # a few warm-started steps track D between optimiser steps; a cold start converges
            warm = self._v is not None and float(self.lipschitz) > 0
            self.refresh_lipschitz(self._in_shape, n_iter=self.power_iters if warm else 1000)
        step = 1.0 / float(self.lipschitz)
        lam = self.lam if self.test_lambda is None else self.test_lambda
        n_iter = self.n_iter if self.training or self.n_iter_eval is None else self.n_iter_eval
        hw = x.shape[-2:]
        dtx = step * self.analysis(x)
        # iteration 1 from Gamma^0 = 0: S(D^T x / L)
        g = soft_threshold(dtx, step * lam, nonneg=self.nonneg)
        momentum = Momentum()
        z = momentum(g, torch.zeros_like(g))
        for _ in range(n_iter - 1):
            g_new = soft_threshold(
                z - step * self.analysis(self.synthesis(z, hw)) + dtx,
                step * lam,
                nonneg=self.nonneg,
            )
            z = momentum(g_new, g)
            g = g_new
        return g

    def objective(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        r"""Per-sample :math:`\tfrac12\|x - D\Gamma\|^2 + \lambda\|\Gamma\|_1` (trained
        :math:`\lambda`, or :attr:`test_lambda` when set)."""
        lam = self.lam if self.test_lambda is None else self.test_lambda
        r = x - self.synthesis(g, x.shape[-2:])
        return 0.5 * r.square().flatten(1).sum(1) + lam * g.abs().flatten(1).sum(1)


def conv_matrix(layer: CSCLayer, in_shape: Sequence[int]) -> torch.Tensor:
    r"""The explicit matrix of :math:`D` on images ``in_shape = (M, H, W)``: shape
    ``(M H W, C H' W')``, column ``j`` = :math:`D e_j` (flattened in C order)."""
    return layer.dictionary.dense(layer.weight, in_shape)


def set_test_lambda(model: nn.Module, lam: float | None) -> None:
    """Set (or with ``None`` clear) the test-time lambda of every CSC layer in ``model``."""
    for m in model.modules():
        if isinstance(m, CSCLayer):
            m.test_lambda = lam


# ----- SDNet: a ResNet whose stem is a CSC layer ---------------------------------------------
class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions with batch norm, and the identity (or a 1x1
    projection where the shape changes) added before the last ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(Configurable, nn.Module):
    r"""A ResNet for small images (CIFAR-style: a 3x3 stem, no max-pool), with a plain or a CSC
    stem.

    ``stem -> BN -> ReLU -> stages -> global average pool -> linear``. Stage ``j`` has
    ``blocks[j]`` :class:`BasicBlock` s of width ``widths[j]`` (stride 2 from the second stage).
    ResNet-18 is ``widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2)``.

    Inputs are images in pixel units; ``mean``/``std`` (per channel, buffers) standardise them
    inside the model, so that noise added to the input is in pixel units.

    Args:
        in_channels, n_classes: data geometry.
        widths, blocks: per stage.
        stem: ``"conv"`` (a 3x3 convolution without bias) or ``"csc"`` (:class:`CSCLayer` with
            as many atoms as the convolution has filters: SDNet).
        csc: keyword arguments of the :class:`CSCLayer`.
        mean, std: per-channel input statistics.
        seed: seed of the stem's initialisation.
    """

    def __init__(
        self,
        in_channels: int = 3,
        n_classes: int = 10,
        widths: Sequence[int] = (64, 128, 256, 512),
        blocks: Sequence[int] = (2, 2, 2, 2),
        stem: str = "conv",
        csc: dict | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        seed: int = 0,
    ):
        super().__init__()
        if len(widths) != len(blocks) or not widths:
            raise ValueError(f"widths and blocks need one entry per stage: {widths}, {blocks}")
        if stem == "conv":
            self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        elif stem == "csc":
            self.stem = CSCLayer(in_channels, widths[0], 3, 1, 1, seed=seed, **(csc or {}))
        else:
            raise ValueError(f"unknown stem {stem!r}; expected 'conv' or 'csc'")
        self.stem_kind = stem
        mean = torch.zeros(in_channels) if mean is None else torch.as_tensor(mean).float()
        std = torch.ones(in_channels) if std is None else torch.as_tensor(std).float()
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1))
        self.register_buffer("std", std.reshape(1, -1, 1, 1))
        self.bn = nn.BatchNorm2d(widths[0])
        layers, c = [], widths[0]
        for j, (width, n) in enumerate(zip(widths, blocks, strict=True)):
            for b in range(n):
                layers.append(BasicBlock(c, width, 2 if (j > 0 and b == 0) else 1))
                c = width
        self.stages = nn.Sequential(*layers)
        self.fc = nn.Linear(c, n_classes)

    def forward(self, x):
        x = (x - self.mean) / self.std
        out = F.relu(self.bn(self.stem(x)))
        out = self.stages(out)
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


def resnet(
    kind: str,
    in_channels: int,
    n_classes: int,
    widths,
    blocks,
    csc=None,
    mean=None,
    std=None,
    seed: int = 0,
) -> ResNet:
    """The CNN (``kind="cnn"``) or the SDNet (``kind="sdnet"``) of the same architecture."""
    stems = {"cnn": "conv", "sdnet": "csc"}
    if kind not in stems:
        raise ValueError(f"unknown model {kind!r}; expected one of {sorted(stems)}")
    return ResNet(in_channels, n_classes, widths, blocks, stems[kind], csc, mean, std, seed)


# ----- training ----------------------------------------------------------------------------
def _augment(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crops after zero padding and random horizontal flips (CIFAR's standard)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None]).to(x.device)
    cols = (dx[:, None] + torch.arange(w)[None]).to(x.device)
    out = padded[
        torch.arange(n, device=x.device)[:, None, None, None],
        torch.arange(x.shape[1], device=x.device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    flip = (torch.rand(n, generator=gen) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def train_image_classifier(
    model: nn.Module,
    data: ImageData,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str = "sgd",
    weight_decay: float = 5e-4,
    augment: bool = False,
    seed: int = 0,
    device: str = "cpu",
    log=None,
) -> FitResult:
    """Cross-entropy training for a fixed number of epochs with a cosine learning rate; the
    weights of the epoch with the best validation accuracy are kept (loaded at the end), through
    :func:`~deepunfold.train.loop.fit`.

    ``optimizer``: ``"sgd"`` (momentum 0.9, Nesterov; the ResNet recipe) or ``"adam"``.
    Mini-batches and augmentations are drawn by a private generator seeded with ``seed``.
    Returns the :class:`~deepunfold.train.loop.FitResult`: ``history`` one record per epoch
    (``epoch``, ``train_loss``, ``val_loss``, ``val_accuracy``, ``seconds``), ``best_epoch``,
    and ``metrics`` the ``val_accuracy`` and ``test_accuracy`` of the kept weights.
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(
            f"need epochs >= 1, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}"
        )
    if optimizer == "sgd":

        def make(params):
            return torch.optim.SGD(
                params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay
            )
    elif optimizer == "adam":

        def make(params):
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected 'sgd' or 'adam'")
    total_steps = epochs * math.ceil(len(data.y_train) / batch_size)
    start = time.perf_counter()

    def evaluate(model):
        val_acc, val_loss = accuracy(model, data.x_val, data.y_val)
        return {"val_loss": val_loss, "val_accuracy": val_acc}

    def record(rec):
        rec["seconds"] = time.perf_counter() - start
        if log is not None:
            log.info(
                "epoch %d: train loss %.4f, val accuracy %.4f",
                rec["epoch"],
                rec["train_loss"],
                rec["val_accuracy"],
            )

    res = fit(
        model,
        (data.x_train, data.y_train),
        lambda m, b: F.cross_entropy(m(b[0]), b[1]),
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        optimizer=make,
        scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, total_steps),
        batch_transform=(lambda b, gen: (_augment(b[0], gen), b[1])) if augment else None,
        # the best validation accuracy keeps its weights; no early stop
        evaluate=evaluate,
        monitor="val_accuracy",
        maximize=True,
        callback=record,
        device=device,
        name=type(model).__name__,
    )
    keys = ("epoch", "train_loss", "val_loss", "val_accuracy", "seconds")
    res.history = [{k: r[k] for k in keys} for r in res.history]
    model.eval()
    res.metrics["val_accuracy"] = res.best
    res.metrics["test_accuracy"] = accuracy(model, data.x_test, data.y_test)[0]
    res.seconds = time.perf_counter() - start
    return res


# ----- Res-CSC -----------------------------------------------------------------------------
def res_csc_forward(y, layers, thresholds, steps, nonneg: bool = True) -> list[torch.Tensor]:
    r"""Res-CSC's forward pass: one ISTA step per layer started from the code two layers
    back where it has the layer's shape (the slides' equation (3)), from zero elsewhere
    (layered thresholding):

    .. math::
        \Gamma_i = S_{\tau_i}\big(\mu_i D_i^\top\Gamma_{i-1} + \Gamma_{i-2}
        - \mu_i D_i^\top D_i\Gamma_{i-2}\big), \qquad \Gamma_0 = y.

    Args as for :func:`~deepunfold.solvers.multilayer.layered_thresholding`. Returns
    ``[gamma_1, ..., gamma_L]``.
    """
    codes = [y]
    for i, layer in enumerate(layers):
        pre = steps[i] * layer.analysis(codes[-1])
        if len(codes) >= 2 and codes[-2].shape == pre.shape:
            init = codes[-2]
            pre = pre + init - steps[i] * layer.analysis(layer.synthesis(init))
        codes.append(soft_threshold(pre, thresholds[i], nonneg=nonneg))
    return codes[1:]


class ResCSCNet(MLISTANet):
    """The ML-ISTA network of task 6 whose forward pass is Res-CSC's (:func:`res_csc_forward`)
    instead of layered thresholding; the ``unfoldings`` ML-ISTA iterations that follow, the
    parameters and their count are the same as :class:`~deepunfold.unfolded.mlista.MLISTANet`.
    Layers whose code has the shape of the code two layers back get the skip (stride 1 and
    equal widths)."""

    def skip_layers(self) -> list[int]:
        """Indices (1-based) of the layers that start from the code two layers back."""
        return [i for i in range(2, len(self.shapes)) if self.shapes[i] == self.shapes[i - 2]]

    def encode(self, x: torch.Tensor, unfoldings: int | None = None) -> list[torch.Tensor]:
        k = self.unfoldings if unfoldings is None else unfoldings
        layers, steps, taus = self.layers(), self.steps, self.thresholds
        gammas = res_csc_forward(x, layers, taus, steps, nonneg=True)
        for _ in range(k):
            gammas = ml_ista_step(x, gammas[-1], layers, steps, taus, nonneg=True)
        return gammas
