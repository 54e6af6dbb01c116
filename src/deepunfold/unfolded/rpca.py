r"""Robust PCA: the unfolded, learned network of tasks 4 and 5 and the samples' arrangements.

Robust PCA splits an observation into a low-rank and a sparse part, :math:`X = L + S`. The
classical baseline, PCP by inexact ALM, is :func:`deepunfold.solvers.pcp.pcp`.

**ISTA-RPCA** is proximal gradient descent with step :math:`t` on the penalised problem
:math:`\tfrac12\|X - L - S\|_F^2 + \lambda_L\|L\|_* + \lambda_S \mathcal R(S)`:

.. math::
    L^{k+1} &= \operatorname{SVT}_{t\lambda_L}\big((1-t)L^k - tS^k + tX\big), \\
    S^{k+1} &= \operatorname{prox}_{t\lambda_S \mathcal R}\big(-tL^k + (1-t)S^k + tX\big).

**Unfolding** (CORONA, Solomon et al. 2019) replaces the scalar weights by convolutions
learned per layer and the thresholds by learned ones:

.. math::
    L^{k+1} &= \operatorname{SVT}_{\mu_1^k}(C_1^k * L^k + C_2^k * S^k + C_3^k * X), \\
    S^{k+1} &= \operatorname{prox}_{\mu_2^k}(K_1^k * L^k + K_2^k * S^k + K_3^k * X),

with :math:`L^0 = S^0 = 0`. With identity kernels scaled as above it *is* ISTA-RPCA, which
is how :class:`UnfoldedRPCA` is initialised (so the untrained network is the ISTA baseline).
The sparse prox is the soft threshold (:math:`\mathcal R = \|\cdot\|_1`, task 4, ``"l1"``) or
the group soft threshold (:math:`\mathcal R = \|\cdot\|_{1,2}`, task 5, ``"l12"``).

**Arrangements.** Samples are tensors ``(batch, F, H, W)``. In ``"frame"`` mode ``F = 1``:
each frame is a sample and the SVT acts on the ``H x W`` frame; L1,2 groups are the frame's
columns. In ``"video"`` mode ``F`` is the number of frames: the SVT acts on the
``HW x F`` Casorati matrix (one column per frame), convolutions act on each frame, and
L1,2 groups are the pixels' time series (the Casorati rows).
"""

from __future__ import annotations

import math
import time

import pandas as pd
import torch
from torch import nn

from deepunfold.ops.metrics import nmse_db
from deepunfold.ops.prox import group_soft_threshold, soft_threshold, svt
from deepunfold.train.checkpoint import Configurable
from deepunfold.train.loop import FitResult, fit

__all__ = [
    "MODES",
    "PROXES",
    "as_samples",
    "as_matrix",
    "from_matrix",
    "sparse_prox",
    "group_norms",
    "UnfoldedRPCA",
    "rpca_loss",
    "tune_untrained",
    "initial_thresholds",
    "train_unfolded",
    "history_table",
    "numerical_rank",
    "layer_statistics",
    "predict",
    "time_per_sample",
    "summary_row",
]

MODES = ("frame", "video")
PROXES = ("l1", "l12")


def _check(mode: str, prox: str | None = None) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown arrangement {mode!r}; expected one of {MODES}")
    if prox is not None and prox not in PROXES:
        raise ValueError(f"unknown sparse prox {prox!r}; expected one of {PROXES}")


def as_samples(sequences, mode: str) -> torch.Tensor:
    """Sequences ``(n, T, H, W)`` as samples ``(batch, F, H, W)`` of the arrangement.

    ``frame``: every frame is a sample, ``(n T, 1, H, W)``; ``video``: unchanged.
    """
    _check(mode)
    x = torch.as_tensor(sequences)
    if x.ndim != 4:
        raise ValueError(f"expected sequences (n, T, H, W), got shape {tuple(x.shape)}")
    return x.reshape(-1, 1, *x.shape[-2:]) if mode == "frame" else x


def as_matrix(x: torch.Tensor, mode: str) -> torch.Tensor:
    """The matrices the SVT acts on: ``(B, H, W)`` frames or ``(B, HW, F)`` Casorati."""
    if mode == "frame":
        return x[:, 0]
    return x.flatten(2).mT


def from_matrix(m: torch.Tensor, mode: str, shape) -> torch.Tensor:
    """Inverse of :func:`as_matrix` for samples of ``shape`` ``(B, F, H, W)``."""
    if mode == "frame":
        return m.unsqueeze(1)
    return m.mT.reshape(shape)


def _group_dim(mode: str) -> int:
    # frame: a group is a column of the frame (over rows H); video: a pixel's time series (F)
    return -2 if mode == "frame" else 1


def sparse_prox(x: torch.Tensor, tau, prox: str, mode: str) -> torch.Tensor:
    r"""The sparse branch's prox on samples ``(B, F, H, W)``.

    ``"l1"``: :math:`\operatorname{sign}(x)\max(|x| - \tau, 0)`; ``"l12"``:
    :math:`x_g \max(0, 1 - \tau/\|x_g\|_2)` per group (see the module docstring).
    """
    if prox == "l1":
        return soft_threshold(x, tau)
    if prox == "l12":
        return group_soft_threshold(x, tau, dim=_group_dim(mode))
    raise ValueError(f"unknown sparse prox {prox!r}; expected one of {PROXES}")


def group_norms(x: torch.Tensor, mode: str) -> torch.Tensor:
    """The L2 norm of every L1,2 group of samples ``(B, F, H, W)``, shape ``(B, n_groups)``."""
    return torch.linalg.vector_norm(x, dim=_group_dim(mode)).flatten(1)


# ---------------------------------------------------------------------- unfolded network


def _conv2d(x: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """``conv2d(x, weight, padding=padding)``; through NNPACK when no gradient is needed.

    With a few channels and 5 x 5 kernels PyTorch's default CPU backend (oneDNN) is about
    three times slower than NNPACK's FFT-tiled convolution, which PyTorch itself picks for
    inference only when oneDNN is switched off. Same map (``tests/test_rpca.py`` checks).
    """
    if (
        not torch.is_grad_enabled()
        and x.dtype == torch.float32
        and x.device.type == "cpu"
        and max(weight.shape[-2:]) <= 16  # NNPACK's largest kernel
        and torch._nnpack_available()
    ):
        return torch._nnpack_spatial_convolution(
            x.contiguous(), weight.contiguous(), None, [padding, padding]
        )
    return nn.functional.conv2d(x, weight, padding=padding)


class UnfoldedRPCA(Configurable, nn.Module):
    r"""Unfolded RPCA (module docstring): ``n_layers`` layers of coupled SVT and sparse prox.

    Parameters (exactly the learned ones): ``weight`` of shape
    ``(n_layers, 2, 3, k, k)`` holding per layer the kernels :math:`[C_1, C_2, C_3]` of the
    low-rank branch and :math:`[K_1, K_2, K_3]` of the sparse branch (one 3-in, 2-out
    convolution computes both branches' three convolutions), and one threshold per branch and
    layer, parameterised by ``threshold_param``:

    - ``"log"`` (default): :math:`\mu = \mu_0 e^{\rho}`, :math:`\rho` learned from 0. Adam's
      steps on :math:`\rho` change a threshold by a *relative* amount, so the SVT threshold
      (of the order of the singular values) and the soft threshold (of the order of pixel
      values) train at the same pace, and thresholds stay positive.
    - ``"raw"``: :math:`\mu` itself is the parameter (the choice of the seed report
      ``seeds/000_*``, docs/architecture.md, Glossary; initialised at 1),
      clamped at 0.

    Args:
        n_layers: unfolded iterations K.
        prox: ``"l1"`` or ``"l12"`` (sparse prox).
        mode: ``"frame"`` or ``"video"`` (arrangement).
        kernel_size: odd side of the convolution kernels.
        step: ISTA step t used for the initial kernels (identity times t, 1 - t, -t).
        lowrank_threshold, sparse_threshold: initial :math:`\mu_1`, :math:`\mu_2` of every layer.
        threshold_param: ``"log"`` or ``"raw"``.
    """

    def __init__(
        self,
        n_layers: int = 4,
        prox: str = "l1",
        mode: str = "frame",
        kernel_size: int = 5,
        step: float = 0.5,
        lowrank_threshold: float = 1.0,
        sparse_threshold: float = 1.0,
        threshold_param: str = "log",
    ):
        super().__init__()
        _check(mode, prox)
        if kernel_size % 2 != 1 or kernel_size < 1:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        if threshold_param not in ("log", "raw"):
            raise ValueError(f"threshold_param must be 'log' or 'raw', got {threshold_param!r}")
        if min(lowrank_threshold, sparse_threshold) <= 0 and threshold_param == "log":
            raise ValueError("initial thresholds must be positive with threshold_param='log'")
        self.config = dict(
            n_layers=n_layers,
            prox=prox,
            mode=mode,
            kernel_size=kernel_size,
            step=step,
            lowrank_threshold=float(lowrank_threshold),
            sparse_threshold=float(sparse_threshold),
            threshold_param=threshold_param,
        )
        self.prox, self.mode, self.n_layers = prox, mode, n_layers
        t = float(step)
        w = torch.zeros(n_layers, 2, 3, kernel_size, kernel_size)
        c = kernel_size // 2
        w[:, 0, :, c, c] = torch.tensor([1 - t, -t, t])  # C1, C2, C3 (low-rank branch)
        w[:, 1, :, c, c] = torch.tensor([-t, 1 - t, t])  # K1, K2, K3 (sparse branch)
        self.weight = nn.Parameter(w)
        init = torch.tensor([lowrank_threshold, sparse_threshold]).repeat(n_layers, 1)
        self.threshold_param = threshold_param
        if threshold_param == "log":
            self.register_buffer("threshold_scale", init)
            self.log_threshold = nn.Parameter(torch.zeros(n_layers, 2))
        else:
            self.raw_threshold = nn.Parameter(init.clone())

    @property
    def thresholds(self) -> torch.Tensor:
        """The thresholds in use, ``(n_layers, 2)``: column 0 is mu1 (SVT), 1 is mu2."""
        if self.threshold_param == "log":
            return self.threshold_scale * torch.exp(self.log_threshold)
        return self.raw_threshold.clamp_min(0.0)

    def forward(self, x: torch.Tensor, return_layers: bool = False):
        """Split samples ``x`` ``(B, F, H, W)`` into ``(L, S)`` (and every layer's if asked).

        The same maps are computed with and without gradients, by different kernels: with
        gradients the SVT is an SVD with the stable backward (:func:`~deepunfold.ops.prox.svt`),
        without (inference) it goes through the Gram matrix (``method="gram"``) and
        the convolutions through NNPACK (:func:`_conv2d`). Layer 1 convolves only ``X``,
        since :math:`L^0 = S^0 = 0`.
        """
        if x.ndim != 4:
            raise ValueError(f"expected samples (B, F, H, W), got shape {tuple(x.shape)}")
        b, f, h, w = x.shape
        pad = self.weight.shape[-1] // 2
        low, sparse = torch.zeros_like(x), torch.zeros_like(x)
        layers = []
        tau = self.thresholds
        grad = torch.is_grad_enabled()
        if not grad:
            # inference: one input buffer [L, S, X] per call, X written once and L, S copied
            # in after each layer (stacking them anew costs a fresh multi-MB allocation per
            # layer)
            buffer = x.new_empty(b * f, 3, h, w)
            buffer[:, 2] = x.reshape(b * f, h, w)
        for k in range(self.n_layers):
            if k == 0:  # L^0 = S^0 = 0: only C_3 * X and K_3 * X
                out = _conv2d(x.reshape(b * f, 1, h, w), self.weight[0, :, 2:], pad)
            elif not grad:
                buffer[:, 0] = low.reshape(b * f, h, w)
                buffer[:, 1] = sparse.reshape(b * f, h, w)
                out = _conv2d(buffer, self.weight[k], pad)
            else:
                inp = torch.stack([low, sparse, x], dim=2).reshape(b * f, 3, h, w)
                out = _conv2d(inp, self.weight[k], pad)
            out = out.reshape(b, f, 2, h, w)
            low_in, sparse_in = out[:, :, 0], out[:, :, 1]
            low = from_matrix(
                svt(
                    as_matrix(low_in, self.mode),
                    tau[k, 0],
                    stable_grad=grad,
                    method="svd" if grad else "gram",
                ),
                self.mode,
                x.shape,
            )
            sparse = sparse_prox(sparse_in, tau[k, 1], self.prox, self.mode)
            if return_layers:
                layers.append((low, sparse))
        return (low, sparse, layers) if return_layers else (low, sparse)


def rpca_loss(low_hat, sparse_hat, low, sparse) -> torch.Tensor:
    r""":math:`\mathrm{MSE}(\hat L, L) + \mathrm{MSE}(\hat S, S)` (means over all entries)."""
    return nn.functional.mse_loss(low_hat, low) + nn.functional.mse_loss(sparse_hat, sparse)


def _batches(n: int, batch_size: int, order: torch.Tensor | None = None):
    idx = torch.arange(n) if order is None else order
    for start in range(0, n, batch_size):
        yield idx[start : start + batch_size]


@torch.inference_mode()
def predict(model: UnfoldedRPCA, x: torch.Tensor, batch_size: int = 64):
    """``(L_hat, S_hat)`` for all samples, in batches."""
    model.eval()
    outs = [model(x[i]) for i in _batches(len(x), batch_size)]
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


@torch.inference_mode()
def _mean_loss(model, x, low, sparse, batch_size):
    total = 0.0
    for i in _batches(len(x), batch_size):
        lh, sh = model(x[i])
        total += float(rpca_loss(lh, sh, low[i], sparse[i])) * len(i)
    return total / len(x)


def tune_untrained(
    x: torch.Tensor,
    low: torch.Tensor,
    sparse: torch.Tensor,
    *,
    prox: str,
    mode: str,
    n_layers: int,
    kernel_size: int,
    step: float,
    lowrank_factors,
    sparse_factors,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
):
    r"""Grid search of ISTA-RPCA's :math:`(\lambda_L, \lambda_S)` for K untrained iterations.

    The grid is relative to the data: :math:`\lambda_L` = factor x the mean largest singular
    value of the samples' matrices, :math:`\lambda_S` = factor x the root-mean-square of
    ``x``. Returns ``(lam_low, lam_sparse, grid)`` where ``grid`` lists every
    ``(lam_low, lam_sparse, loss)``; the network's thresholds are then
    :math:`\mu_1 = t\lambda_L`, :math:`\mu_2 = t\lambda_S`. ``device``: where the grid's
    untrained networks run (the data are moved there; CPU by default).
    """
    x, low, sparse = x.to(device), low.to(device), sparse.to(device)
    sigma1 = float(torch.linalg.matrix_norm(as_matrix(x, mode), ord=2).mean())
    rms = float(x.pow(2).mean().sqrt())
    grid = []
    for fl in lowrank_factors:
        for fs in sparse_factors:
            lam_l, lam_s = fl * sigma1, fs * rms
            model = UnfoldedRPCA(
                n_layers, prox, mode, kernel_size, step, step * lam_l, step * lam_s
            ).to(device)
            grid.append((lam_l, lam_s, _mean_loss(model, x, low, sparse, batch_size)))
    best = min(grid, key=lambda g: g[2])
    return best[0], best[1], grid


def initial_thresholds(
    init: str | float, step: float, lam_low: float, lam_sparse: float
) -> tuple[float, float]:
    r"""The thresholds :math:`(\mu_1, \mu_2)` every layer of the network starts from.

    ``"tuned"``: those of the untrained ISTA-RPCA, :math:`\mu_1 = t\lambda_L`,
    :math:`\mu_2 = t\lambda_S` with step :math:`t` and the :math:`(\lambda_L, \lambda_S)` of
    :func:`tune_untrained`, so that training starts from the tuned baseline. A number: that
    value for both (the seed's choice was 1.0, with ``threshold_param="raw"``).
    """
    if init == "tuned":
        return step * lam_low, step * lam_sparse
    if isinstance(init, str):
        raise ValueError(f"threshold init must be 'tuned' or a positive number, got {init!r}")
    if not init > 0:
        raise ValueError(f"a threshold init must be positive, got {init}")
    return float(init), float(init)


def train_unfolded(
    model: UnfoldedRPCA,
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    patience: int,
    seed: int,
    progress=None,
    device: str | torch.device = "cpu",
) -> FitResult:
    """Adam on :func:`rpca_loss` with early stopping on the validation loss
    (:func:`~deepunfold.train.loop.fit`).

    ``train`` and ``val`` are ``(x, L, S)`` sample tensors. Epoch 0 records the initial
    losses; training stops after ``patience`` epochs without a new best validation loss, and
    the model is left with the best weights (possibly the initial ones). Batches are drawn
    from a generator seeded with ``seed``, so a run is reproducible.

    ``device``: where the model and the data are moved for training (the model stays there;
    move it back with ``model.cpu()`` before saving). The batch order is drawn on the CPU
    either way, so the same samples make the same batches on every device. On the CPU
    (default) the arithmetic is exactly that of a call without ``device``.

    ``progress(record)`` is called after every epoch. Returns the
    :class:`~deepunfold.train.loop.FitResult`; its ``history`` has one record per epoch
    (``epoch``, ``train_loss``, ``val_loss``, ``thresholds``, ``best``; epoch 0 is the
    initial model, whose ``train_loss`` is its mean loss on the training set), which
    :func:`history_table` turns into a table.
    """
    train, val = tuple(a.to(device) for a in train), tuple(a.to(device) for a in val)
    initial = [True]

    def evaluate(model):
        out = {}
        if initial[0]:  # epoch 0: the initial model's loss on the training set too
            initial[0] = False
            out["train_loss"] = _mean_loss(model, *train, batch_size)
        out["val_loss"] = _mean_loss(model, *val, batch_size)
        out["thresholds"] = model.thresholds.detach().cpu().clone().numpy()
        return out

    return fit(
        model,
        train,
        lambda m, b: rpca_loss(*m(b[0]), b[1], b[2]),
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        lr=lr,
        evaluate=evaluate,
        eval_initial=True,
        monitor="val_loss",
        patience=patience,
        callback=progress,
        device=device,
        name="UnfoldedRPCA",
    )


def history_table(history: list[dict]) -> pd.DataFrame:
    """The training history of :func:`train_unfolded` as a table: ``epoch``, ``train_loss``,
    ``val_loss``, ``best`` and every layer's thresholds ``mu1_k``, ``mu2_k`` (k from 1)."""
    rows = []
    for rec in history:
        row = {k: rec[k] for k in ("epoch", "train_loss", "val_loss", "best")}
        for k, (a, b) in enumerate(rec["thresholds"]):
            row[f"mu1_{k + 1}"], row[f"mu2_{k + 1}"] = a, b
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- evaluation


def numerical_rank(matrices: torch.Tensor, rtol: float = 1e-3) -> torch.Tensor:
    r"""Per matrix, the number of singular values above ``rtol`` x the largest one."""
    s = torch.linalg.svdvals(matrices)
    return (s > rtol * s[..., :1]).sum(-1)


@torch.inference_mode()
def layer_statistics(model: UnfoldedRPCA, x: torch.Tensor, batch_size: int = 64) -> dict:
    """Per layer, over all samples: mean singular values of L^k, sparsity of S^k.

    Returns ``singular_values`` ``(K, n_sv)`` (mean over samples, sorted descending),
    ``zero_fraction`` ``(K,)`` (fraction of exactly zero entries of S^k) and
    ``zero_group_fraction`` ``(K,)`` (fraction of L1,2 groups of S^k that are all zero).
    """
    model.eval()
    k = model.n_layers
    sv_sum, zeros, groups = None, torch.zeros(k), torch.zeros(k)
    for i in _batches(len(x), batch_size):
        _, _, layers = model(x[i], return_layers=True)
        sv = torch.stack(
            [torch.linalg.svdvals(as_matrix(lo, model.mode)).sum(0) for lo, _ in layers]
        )
        sv_sum = sv if sv_sum is None else sv_sum + sv
        zeros += torch.tensor([((s == 0).double().mean() * len(i)).cpu() for _, s in layers])
        groups += torch.tensor(
            [((group_norms(s, model.mode) == 0).double().mean() * len(i)).cpu() for _, s in layers]
        )
    n = len(x)
    return {
        "singular_values": (sv_sum / n).cpu().numpy(),
        "zero_fraction": (zeros / n).numpy(),
        "zero_group_fraction": (groups / n).numpy(),
    }


def time_per_sample(fn, x: torch.Tensor, batch_size: int, repeats: int = 1) -> float:
    """Seconds per sample of ``fn(batch)`` over all of ``x`` in batches (best of ``repeats``).

    One warm-up call on the first batch is not timed. On a CUDA ``x`` the GPU is synchronised
    before the clock is read, so the time covers the kernels, not just their launch.
    """
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    with torch.inference_mode():
        fn(x[:batch_size])
        best = math.inf
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            for i in _batches(len(x), batch_size):
                fn(x[i])
            sync()
            best = min(best, time.perf_counter() - start)
    return best / len(x)


def summary_row(low_hat, sparse_hat, low, sparse, mode: str, rtol: float) -> dict:
    """NMSE of L and S (dB), mean numerical rank of L_hat, sparsity of S_hat."""
    return {
        "nmse_low_db": nmse_db(low_hat, low),
        "nmse_sparse_db": nmse_db(sparse_hat, sparse),
        "rank": float(numerical_rank(as_matrix(low_hat, mode).double(), rtol).double().mean()),
        "zero_fraction": float((sparse_hat == 0).double().mean()),
        "zero_group_fraction": float((group_norms(sparse_hat, mode) == 0).double().mean()),
    }
