r"""The ML-ISTA network: a convolutional classifier whose encoder unfolds ML-ISTA.

Each layer :math:`i` has a convolutional dictionary :math:`D_i` (its transpose
:math:`D_i^\top` is a strided convolution with filters :math:`W_i`, :math:`D_i` the matching
transposed convolution), a learned step :math:`\mu_i` and learned non-negative per-channel
thresholds :math:`\tau_i`. With ``unfoldings = 0`` the encoder is the feed-forward CNN

.. math::
    \gamma_i = \mathrm{ReLU}(\mu_i D_i^\top \gamma_{i-1} - \tau_i), \qquad \gamma_0 = x,

i.e. layered thresholding (:func:`deepunfold.solvers.multilayer.layered_thresholding` with
``nonneg=True``); each further unfolding runs one ML-ISTA iteration
(:func:`deepunfold.solvers.multilayer.ml_ista_step`) from the current deepest code, with the *same*
:math:`W_i, \mu_i, \tau_i`:

.. math::
    \hat\gamma_L = \gamma_L,\ \hat\gamma_{i-1} = D_i\hat\gamma_i,\qquad
    \gamma_i \leftarrow \mathrm{ReLU}\big(\hat\gamma_i - \mu_i D_i^\top(\hat\gamma_{i-1}
    - \gamma_{i-1}) - \tau_i\big).

A linear classifier reads :math:`\gamma_L`. The number of parameters does not depend on the
number of unfoldings (Sulam, Aberdam, Beck & Elad 2019, "ML-ISTA CNN").

Training: :func:`train_classifier` (Adam, cross-entropy, a fixed number of epochs) on a
:class:`~deepunfold.data.digits.DigitData` (:func:`~deepunfold.data.digits.load_digits_split`,
scikit-learn's 8x8 digits, or :func:`~deepunfold.data.digits.load_mnist`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepunfold.data.digits import DigitData
from deepunfold.ops.conv_dictionary import ConvDictionary
from deepunfold.solvers.multilayer import Layer, conv_layer, layered_thresholding, ml_ista_step
from deepunfold.solvers.proximal_gradient import power_iteration
from deepunfold.train.checkpoint import Configurable
from deepunfold.train.loop import FitResult, accuracy, fit

__all__ = [
    "MLISTANet",
    "train_classifier",
]


class MLISTANet(Configurable, nn.Module):
    """Convolutional ML-ISTA encoder + linear classifier (module docstring).

    Args:
        in_shape: ``(channels, height, width)`` of the inputs.
        channels: output channels of each layer, e.g. ``[32, 64, 128]``.
        kernel_sizes, strides, paddings: per layer.
        n_classes: classifier outputs.
        unfoldings: number of ML-ISTA iterations after the forward pass (0: feed-forward CNN).
        init_threshold: initial value of every threshold.
        seed: seed of the weight initialisation (a private generator).
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        channels: Sequence[int],
        kernel_sizes: Sequence[int],
        strides: Sequence[int],
        paddings: Sequence[int],
        n_classes: int = 10,
        unfoldings: int = 0,
        init_threshold: float = 0.01,
        seed: int = 0,
    ):
        super().__init__()
        n = len(channels)
        if not (len(kernel_sizes) == len(strides) == len(paddings) == n) or n == 0:
            raise ValueError(
                "channels, kernel_sizes, strides and paddings need one entry per layer, got "
                f"{len(channels)}, {len(kernel_sizes)}, {len(strides)}, {len(paddings)}"
            )
        if unfoldings < 0:
            raise ValueError(f"unfoldings must be >= 0, got {unfoldings}")
        if init_threshold <= 0:
            raise ValueError(f"init_threshold must be positive, got {init_threshold}")
        self.unfoldings = int(unfoldings)
        self.strides, self.paddings = list(strides), list(paddings)
        gen = torch.Generator().manual_seed(seed)
        c, h, w = in_shape
        self.shapes = [(c, h, w)]  # input shape of every layer, then the code shape
        weights, steps = [], []
        for c_out, k, s, p in zip(channels, kernel_sizes, strides, paddings, strict=True):
            op = ConvDictionary(s, p)
            h2, w2 = op.code_size(h, k), op.code_size(w, k)
            if h2 < 1 or w2 < 1:
                raise ValueError(f"layer with kernel {k}, stride {s} shrinks {h}x{w} to nothing")
            W = torch.randn(c_out, c, k, k, generator=gen) / (c * k * k) ** 0.5
            weights.append(W)
            c, h, w = c_out, h2, w2
            self.shapes.append((c, h, w))
        # filters scaled so that ||D_i||_2 = 1 and steps start at 1 = 1/||D_i||^2: the unfolded
        # iterations start inside ISTA's stable range and the forward pass does not shrink
        # the activations layer after layer (mu_i D_i^T has norm 1)
        for i, W in enumerate(weights):
            W /= power_iteration(self._dense(W, i), tol=1e-7)
            steps.append(1.0)
        self.weights = nn.ParameterList([nn.Parameter(W) for W in weights])
        self.log_steps = nn.Parameter(torch.tensor(steps).log())
        # softplus^{-1}(init): thresholds stay non-negative (a ReLU with a negative bias)
        raw = float(np.log(np.expm1(init_threshold)))
        self.raw_thresholds = nn.ParameterList(
            [nn.Parameter(torch.full((ch,), raw)) for ch in channels]
        )
        self.classifier = nn.Linear(c * h * w, n_classes)
        with torch.no_grad():  # PyTorch's default init, from the private generator
            bound = (c * h * w) ** -0.5
            for p in self.classifier.parameters():
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)

    # ----- the dictionaries as linear maps -------------------------------------------------
    def dictionary(self, i: int) -> ConvDictionary:
        """Layer ``i``'s dictionary (the operator; its filters are ``weights[i]``)."""
        return ConvDictionary(self.strides[i], self.paddings[i])

    def analysis(self, i: int, v: torch.Tensor, W: torch.Tensor | None = None) -> torch.Tensor:
        r""":math:`D_i^\top v`: strided convolution with the filters of layer ``i``."""
        return self.dictionary(i).analysis(v, self.weights[i] if W is None else W)

    def synthesis(self, i: int, g: torch.Tensor, W: torch.Tensor | None = None) -> torch.Tensor:
        r""":math:`D_i \gamma`: the adjoint (transposed convolution) back to layer ``i``'s input
        shape."""
        W = self.weights[i] if W is None else W
        return self.dictionary(i).synthesis(g, W, self.shapes[i][1:])

    def _dense(self, W: torch.Tensor, i: int) -> torch.Tensor:
        """The matrix of :math:`D_i^\\top` (for the step initialisation only)."""
        return self.dictionary(i).dense(W, self.shapes[i]).T

    def layers(self) -> list[Layer]:
        """The dictionaries as :class:`~deepunfold.solvers.multilayer.Layer` objects."""
        return [
            conv_layer(W, self.strides[i], self.paddings[i], self.shapes[i])
            for i, W in enumerate(self.weights)
        ]

    @property
    def steps(self) -> list[torch.Tensor]:
        return list(self.log_steps.exp())

    @property
    def thresholds(self) -> list[torch.Tensor]:
        return [F.softplus(r)[None, :, None, None] for r in self.raw_thresholds]

    # ----- inference ----------------------------------------------------------------------
    def encode(self, x: torch.Tensor, unfoldings: int | None = None) -> list[torch.Tensor]:
        """Codes ``[gamma_1, ..., gamma_L]`` after the forward pass and ``unfoldings``
        ML-ISTA iterations (default: the model's own)."""
        k = self.unfoldings if unfoldings is None else unfoldings
        layers, steps, taus = self.layers(), self.steps, self.thresholds
        gammas = layered_thresholding(x, layers, taus, steps, nonneg=True)
        for _ in range(k):
            gammas = ml_ista_step(x, gammas[-1], layers, steps, taus, nonneg=True)
        return gammas

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encode(x)[-1].flatten(1))


def train_classifier(
    model: nn.Module,
    data: DigitData,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.0,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> FitResult:
    """Adam on the cross-entropy for a fixed number of epochs (the fixed training budget),
    through :func:`~deepunfold.train.loop.fit`.

    Mini-batches are drawn by a private generator seeded with ``seed``. The history records,
    per epoch, the mean training loss and the test accuracy and loss; ``metrics`` holds the
    final ``train_accuracy`` and ``test_accuracy``.
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(
            f"need epochs >= 1, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}"
        )
    x_te, y_te = data.x_test.to(device), data.y_test.to(device)

    def evaluate(model):
        test_acc, test_loss = accuracy(model, x_te, y_te, batch_size=1000)
        return {"test_loss": test_loss, "test_accuracy": test_acc}

    res = fit(
        model,
        (data.x_train, data.y_train),
        lambda m, b: F.cross_entropy(m(b[0]), b[1]),
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        optimizer=lambda p: torch.optim.Adam(p, lr=lr, weight_decay=weight_decay),
        evaluate=evaluate,
        device=device,
        progress=progress,
        name=type(model).__name__,
    )
    res.history = [
        {k: r[k] for k in ("epoch", "train_loss", "test_loss", "test_accuracy")}
        for r in res.history
    ]
    x_tr, y_tr = data.x_train.to(device), data.y_train.to(device)
    res.metrics["train_accuracy"] = accuracy(model, x_tr, y_tr, batch_size=1000)[0]
    res.metrics["test_accuracy"] = accuracy(model, x_te, y_te, batch_size=1000)[0]
    return res
