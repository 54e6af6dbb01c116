r"""Learned robust PCA that scales: LRPCA (Cai, Liu & Yin, NeurIPS 2021).

LRPCA unfolds an AccAltProj-style alternation between a sparse and a rank-r step, but its
low-rank step works on the factors :math:`L = UV^\top` (:math:`U` ``(m, r)``, :math:`V`
``(n, r)``) by one *scaled* gradient step (ScaledGD), and it learns only one threshold
:math:`\zeta_k` and one step :math:`\eta_k` per layer. Its parameters do not depend on the
matrix size, so a model trained on small problems runs on large ones. For every matrix
:math:`Y` of a batch, with the rank :math:`r` an **input** (the method is given the rank, as
AccAltProj is):

.. math::

    S_{-1} &= \mathcal T_{\zeta_{-1}}(Y),\qquad
    U_0\Sigma_0V_0^\top = \text{rank-}r\text{ SVD of } Y - S_{-1},\qquad
    U_0 \leftarrow U_0\Sigma_0^{1/2},\ V_0 \leftarrow V_0\Sigma_0^{1/2},\\
    S_k &= \mathcal T_{\zeta_k}(Y - U_kV_k^\top),\qquad E_k = Y - U_kV_k^\top - S_k,\\
    U_{k+1} &= U_k + \eta_{k+1}\,E_kV_k(V_k^\top V_k)^{-1},\qquad
    V_{k+1} = V_k + \eta_{k+1}\,E_k^\top U_k(U_k^\top U_k)^{-1},

for layers :math:`k = 0, \dots, K-1`. :math:`\mathcal T` is the soft threshold, as in the
authors' code (``caesarcai/LRPCA``: ``sign(x) max(|x| - zeta, 0)``); AccAltProj's is the hard
threshold. The output is :math:`L_K = U_KV_K^\top` and, by default (``output="hard"``),
:math:`S_K = \mathcal H_{\zeta_K}(Y - L_K)`: the support the last threshold finds with the
values of :math:`Y - L_K`, which undoes the soft threshold's shrinkage by :math:`\zeta_K`
(``output="soft"``: :math:`\mathcal T_{\zeta_K}(Y - L_K)`; the authors output only
:math:`L`).

The learned parameters are :math:`\zeta_{-1}, \dots, \zeta_K`, here in units of the RMS of
:math:`Y` (scale-equivariant and size-free; the authors learn absolute thresholds at
:math:`n = 1000, r = 5` and rescale them by :math:`(1000/n)(r/5)`, the same :math:`1/n` law
for their generator, whose RMS of :math:`L` is :math:`\sqrt r/n`), and :math:`\eta_1, \dots,
\eta_K`. Beyond the :math:`K` trained layers, layer :math:`k > K` reuses :math:`\eta_K` and
decays the threshold geometrically, :math:`\zeta_k = \zeta_K\rho^{k-K}`, with :math:`\rho`
the mean ratio of the last trained thresholds, at least 1/2 (:meth:`LRPCA.tail_decay`): any
number of layers runs at test time (the paper's feedforward-recurrent mixture learns such a
tail; we extrapolate it).

AccAltProj is the special case ``schedule="accaltproj"``: its full-SVD initialisation, the
tangent-space low-rank step (:func:`~deepunfold.solvers.accaltproj.tangent_update`), the
hard threshold and its data-driven schedule
:math:`\zeta_k = \beta(\sigma_{r+1} + \gamma^k\sigma_1)`; ``LRPCA(0,
schedule="accaltproj")(Y, r, K)`` is AccAltProj's iterate after ``K`` iterations.

Training (:func:`train_lrpca`) is layer-wise, then fine-tuning, as the paper's: stage
:math:`k` trains the new layer's :math:`\zeta_k, \eta_k` alone, then all layers up to
:math:`k`, every step on a fresh batch; the loss is the relative squared error of
:math:`L_K` plus that of :math:`S_K`. The authors use SGD on the raw parameters, the error
of :math:`L` only, and start each new threshold at 0.1 times the previous one; we use Adam
on :math:`\log\zeta` and :math:`\eta`, start the new threshold at the best of a few decays
of the previous one on validation data, and keep each stage's best validation weights. Every
threshold and step is a parameter of its own (:meth:`LRPCA.layer_parameters`), so each phase
is one :func:`~deepunfold.train.loop.fit` of that phase's parameters, the one training loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from deepunfold.ops.prox import hard_threshold, soft_threshold
from deepunfold.solvers.accaltproj import (
    Factors,
    default_beta,
    initialise,
    schedule,
    tangent_update,
    truncated_svd,
)
from deepunfold.train.checkpoint import Configurable
from deepunfold.train.loop import BatchSampler, FitResult, check_finite, fit

UPDATES = ("scaledgd", "tangent")
THRESHOLDS = ("soft", "hard")
SCHEDULES = ("learned", "accaltproj")
SVDS = ("full", "randomized")


def randomized_svd(x: torch.Tensor, rank: int, oversample: int = 5, niter: int = 4) -> Factors:
    """Rank-``rank`` SVD of every matrix of ``x`` by a randomized range finder with ``niter``
    power iterations (as ``torch.svd_lowrank``, which the authors' code calls), from a fixed
    seed, so the result is reproducible; costs O(mn(r + oversample)) per iteration instead of
    a full SVD's O(mn min(m, n))."""
    b, m, n = x.shape
    q = min(rank + oversample, m, n)
    g = torch.Generator(device=x.device).manual_seed(0)
    omega = torch.randn(n, q, generator=g, device=x.device, dtype=x.dtype)
    basis = torch.linalg.qr(x @ omega).Q
    for _ in range(niter):
        basis = torch.linalg.qr(x.mT @ basis).Q
        basis = torch.linalg.qr(x @ basis).Q
    u, s, vh = torch.linalg.svd(basis.mT @ x, full_matrices=False)
    return Factors((basis @ u)[..., :rank], s[..., :rank], vh[..., :rank, :].mT)


def rms(x: torch.Tensor) -> torch.Tensor:
    """Root-mean-square value of every matrix of ``x`` ``(B, m, n)``: ``(B,)``."""
    return x.square().mean((-2, -1)).sqrt().clamp_min(torch.finfo(x.dtype).tiny)


class LRPCA(Configurable, nn.Module):
    """Learned RPCA with ``n_layers`` trained layers (see the module docstring).

    Args:
        n_layers: trained layers K (thresholds zeta_{-1}..zeta_K, steps eta_1..eta_K).
        threshold_init: zeta_{-1} (in units of the RMS of Y) at the start of training.
        threshold_decay: zeta_k starts at ``threshold_decay`` x zeta_{k-1} (training and the
            untrained model).
        step_init: every eta_k at the start (ScaledGD's step).
        update: ``scaledgd`` (LRPCA) or ``tangent`` (AccAltProj's tangent-space projection).
        threshold: ``soft`` (LRPCA) or ``hard`` (AccAltProj).
        schedule: ``learned`` thresholds, or ``accaltproj`` (its data-driven schedule with
            ``beta``, ``beta_init`` (default the authors') and ``gamma``).
        svd: the initial rank-r SVD: ``full`` or ``randomized`` (the authors' choice).
    """

    def __init__(
        self,
        n_layers: int,
        *,
        threshold_init: float = 1.0,
        threshold_decay: float = 0.5,
        step_init: float = 0.5,
        update: str = "scaledgd",
        threshold: str = "soft",
        schedule: str = "learned",
        svd: str = "randomized",
        output: str = "hard",
        beta: float | None = None,
        beta_init: float | None = None,
        gamma: float = 0.5,
    ):
        super().__init__()
        if n_layers < 0:
            raise ValueError(f"n_layers must be >= 0, got {n_layers}")
        for name, value, allowed in (
            ("update", update, UPDATES),
            ("threshold", threshold, THRESHOLDS),
            ("schedule", schedule, SCHEDULES),
            ("svd", svd, SVDS),
            ("output", output, THRESHOLDS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if threshold_init <= 0 or not 0 < threshold_decay <= 1 or step_init <= 0:
            raise ValueError("threshold_init, threshold_decay (<= 1) and step_init must be > 0")
        self.n_layers = int(n_layers)
        self.update, self.threshold, self.schedule, self.svd = update, threshold, schedule, svd
        self.output = output
        self.beta, self.beta_init, self.gamma = beta, beta_init, float(gamma)
        self.threshold_decay, self.step_init = float(threshold_decay), float(step_init)
        # one scalar parameter each: log zeta_{-1}, ..., log zeta_K; eta_1, ..., eta_K
        logs = math.log(threshold_init) + torch.arange(n_layers + 2, dtype=torch.float64) * (
            math.log(threshold_decay)
        )
        self.log_zeta = nn.ParameterList([nn.Parameter(z.clone()) for z in logs])
        self.step = nn.ParameterList(
            [
                nn.Parameter(torch.tensor(float(step_init), dtype=torch.float64))
                for _ in range(n_layers)
            ]
        )

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        """The parameters a layer-wise stage ``k`` trains: the initialisation's two thresholds
        zeta_{-1}, zeta_0 for k = 0, layer k's zeta_k and eta_k for 1 <= k <= K."""
        if not 0 <= k <= self.n_layers:
            raise ValueError(f"layer must be in [0, {self.n_layers}], got {k}")
        if k == 0:
            return [self.log_zeta[0], self.log_zeta[1]]
        return [self.log_zeta[k + 1], self.step[k - 1]]

    def log_thresholds(self) -> torch.Tensor:
        """log zeta_{-1}, ..., log zeta_K as one vector ``(K + 2,)``."""
        return torch.stack(list(self.log_zeta))

    def trained_steps(self) -> torch.Tensor:
        """eta_1, ..., eta_K as one vector ``(K,)``."""
        if not self.n_layers:
            return torch.zeros(0, dtype=torch.float64, device=self.log_zeta[0].device)
        return torch.stack(list(self.step))

    # -- parameters at any depth ---------------------------------------------------------

    def tail_decay(self) -> float:
        """rho of the thresholds beyond the trained layers: the mean ratio of the last (up to
        three) trained successive thresholds, within [1/2, 1]. A threshold that falls below
        the error stops the iteration (the soft threshold then takes all of the residual into
        S), so the tail decays no faster than AccAltProj's gamma = 1/2."""
        z = self.log_thresholds().detach()
        j = min(3, len(z) - 1)
        return min(1.0, max(0.5, math.exp(float(z[-1] - z[-1 - j]) / j)))

    def thresholds(self, n_layers: int) -> torch.Tensor:
        """zeta_{-1}, ..., zeta_{n_layers} (relative to the RMS of Y), extrapolated past K."""
        z = self.log_thresholds()
        if n_layers <= self.n_layers:
            return z[: n_layers + 2].exp()
        extra = torch.arange(1, n_layers - self.n_layers + 1, dtype=z.dtype, device=z.device)
        tail = z[-1] + extra * math.log(max(self.tail_decay(), 1e-300))
        return torch.cat([z, tail]).exp()

    def steps(self, n_layers: int) -> torch.Tensor:
        """eta_1, ..., eta_{n_layers}; eta_K repeated past the trained layers."""
        step = self.trained_steps()
        if n_layers <= self.n_layers:
            return step[:n_layers]
        last = step[-1:] if self.n_layers else step.new_full((1,), self.step_init)
        return torch.cat([step, last.expand(n_layers - self.n_layers)])

    # -- the network ---------------------------------------------------------------------

    def _op(self, x, zeta, kind=None):
        zeta = zeta[:, None, None]
        kind = kind or self.threshold
        return soft_threshold(x, zeta) if kind == "soft" else hard_threshold(x, zeta)

    def forward(
        self, y: torch.Tensor, rank: int, n_layers: int | None = None, iterates: bool = False
    ):
        """``(L_K, S_K)`` of every matrix of ``y`` ``(B, m, n)`` with rank ``rank`` after
        ``n_layers`` layers (default: the trained K; any number works). With ``iterates``,
        the list of ``(L_k, S_k)`` for k = 0..K instead."""
        if y.ndim != 3:
            raise ValueError(f"LRPCA expects a batch of matrices (B, m, n), got {tuple(y.shape)}")
        m, n = y.shape[-2:]
        if not 1 <= rank <= min(m, n) // 2:
            raise ValueError(f"rank must be in [1, {min(m, n) // 2}], got {rank}")
        depth = self.n_layers if n_layers is None else int(n_layers)
        if self.schedule == "accaltproj":
            return self._accaltproj(y, rank, depth, iterates)
        scale = rms(y)
        zeta = self.thresholds(depth).to(y.dtype)[:, None] * scale  # (depth + 2, B)
        eta = self.steps(depth).to(y.dtype)
        s = self._op(y, zeta[0])
        f = (truncated_svd if self.svd == "full" else randomized_svd)(y - s, rank)
        out = []
        if self.update == "tangent":
            low = f.matrix()
            for k in range(depth + 1):
                s = self._op(y - low, zeta[k + 1])
                if iterates or k == depth:
                    out.append((low, self._op(y - low, zeta[k + 1], self.output)))
                if k == depth:
                    break
                f, _ = tangent_update(y, s, f)
                low = f.matrix()
            return out if iterates else out[-1]
        root = f.sigma.sqrt()[:, None, :]
        u, v = f.u * root, f.v * root
        for k in range(depth + 1):
            low = u @ v.mT
            s = self._op(y - low, zeta[k + 1])
            if iterates or k == depth:
                out.append((low, self._op(y - low, zeta[k + 1], self.output)))
            if k == depth:
                break
            e = y - low - s
            step = eta[k]
            u, v = (
                u + step * torch.linalg.solve(v.mT @ v, (e @ v).mT).mT,
                v + step * torch.linalg.solve(u.mT @ u, (e.mT @ u).mT).mT,
            )
        return out if iterates else out[-1]

    def _accaltproj(self, y, rank, depth, iterates):
        b, m, n = y.shape
        beta = default_beta(m, n) if self.beta is None else float(self.beta)
        beta_init = 4.0 * beta if self.beta_init is None else float(self.beta_init)
        f, s = initialise(y, rank, beta, beta_init)
        low = f.matrix()
        out = [(low, s)]
        for t in range(1, depth + 1):
            f, sm = tangent_update(y, s, f)
            low = f.matrix()
            s = hard_threshold(y - low, schedule(sm, rank, beta, self.gamma, t)[:, None, None])
            out.append((low, s))
        return out if iterates else out[-1]


def relative_error(est: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """``||est - true||_F / ||true||_F`` per matrix."""
    den = torch.linalg.matrix_norm(true).clamp_min(torch.finfo(true.dtype).tiny)
    return torch.linalg.matrix_norm(est - true) / den


def lrpca_loss(model, y, low, sparse, rank, n_layers=None) -> torch.Tensor:
    """Mean over the batch of the relative squared errors of L_K and of S_K."""
    lh, sh = model(y, rank, n_layers)
    return (relative_error(lh, low).square() + relative_error(sh, sparse).square()).mean()


def synthetic_problems(
    batch: int,
    n: int,
    rank: int,
    alpha: float,
    *,
    m: int | None = None,
    generator: torch.Generator | None = None,
    dtype=torch.float64,
    device="cpu",
):
    """The authors' problems: ``L = U V^T`` with Gaussian factors of variance 1/m and 1/n, a
    uniformly random ``alpha`` fraction of outliers uniform in ``[-E|L|, E|L|]``.

    Returns ``(Y, L, S)``, each ``(batch, m, n)`` (``m = n`` by default)."""
    m = n if m is None else m
    kw = dict(generator=generator, dtype=dtype, device=device)
    u = torch.randn(batch, m, rank, **kw) / math.sqrt(m)
    v = torch.randn(batch, n, rank, **kw) / math.sqrt(n)
    low = u @ v.mT
    scale = low.abs().mean((-2, -1), keepdim=True)
    values = (2 * torch.rand(batch, m, n, **kw) - 1) * scale
    # exactly floor(alpha m n) outliers per matrix, uniformly placed
    order = torch.rand(batch, m * n, **kw).argsort(dim=-1)
    mask = (order < math.floor(alpha * m * n)).reshape(batch, m, n)
    sparse = values * mask
    return low + sparse, low, sparse


def train_lrpca(
    model: LRPCA,
    draw: Callable[[int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    val: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    rank: int,
    *,
    layer_steps: int = 100,
    finetune_steps: int = 100,
    lr: float = 0.02,
    eval_every: int = 10,
    seed: int = 0,
    start_decays: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0),
    progress: Callable[[dict], None] | None = None,
) -> FitResult:
    """Layer-wise training, then fine-tuning, as the paper (see the module docstring).

    Every phase is one :func:`~deepunfold.train.loop.fit` of that phase's parameters
    (:meth:`LRPCA.layer_parameters`): stage 0 trains the initialisation's thresholds
    zeta_{-1}, zeta_0; stage k >= 1 starts zeta_k at the best (on ``val``) of
    ``start_decays`` times zeta_{k-1}, trains zeta_k and eta_k alone for ``layer_steps`` Adam
    steps, then every parameter up to layer k for ``finetune_steps``. ``draw(i)`` returns the
    training batch ``(Y, L, S)`` number ``i``; all phases take their draws from one seeded
    stream of ``range(total steps)`` (:class:`~deepunfold.train.loop.BatchSampler`), so every
    step sees a batch of its own. ``val`` is a fixed validation batch on which each phase keeps
    its best weights (every ``eval_every`` steps and after the last; the phase's starting
    weights count).

    Returns a :class:`~deepunfold.train.loop.FitResult`: ``history`` holds every phase's
    fit records (``stage``, ``phase``, ``step`` (global), ``train_loss``, ``val_loss``,
    ``best``; the initial evaluation of each phase has step 0 of that phase), ``steps`` the
    steps of all phases, and ``metrics["stages"]`` one record per stage and phase: stage,
    phase, steps, val_loss (the kept weights'), thresholds, eta.
    """
    if model.schedule != "learned":
        raise ValueError("only a model with learned thresholds trains")
    phases = [(0, "layer", layer_steps)]
    for stage in range(1, model.n_layers + 1):
        phases += [(stage, "layer", layer_steps), (stage, "finetune", finetune_steps)]
    total = sum(n for _, _, n in phases)
    draws = (torch.arange(total),)
    stream = BatchSampler(total, 1, seed, mode="stream")
    result = FitResult()
    for stage, phase, n_steps in phases:
        if phase == "layer" and stage >= 1:  # the new threshold: the best of a few decays
            _start_threshold(model, val, rank, stage, start_decays)
        if phase == "layer":
            params = model.layer_parameters(stage)
        else:
            params = [p for k in range(stage + 1) for p in model.layer_parameters(k)]

        def loss_fn(model, batch, stage=stage):
            y, low, sparse = draw(int(batch[0][0]))
            return lrpca_loss(model, y, low, sparse, rank, stage)

        def evaluate(model, stage=stage):
            return {"val_loss": _val_loss(model, val, rank, stage)}

        res = fit(
            model,
            draws,
            loss_fn,
            max_steps=n_steps,
            sampler=stream,
            params=params,
            lr=lr,
            evaluate=evaluate,
            eval_every=eval_every,
            eval_initial=True,
            monitor="val_loss",
            check_monitor=True,
            device=model.log_zeta[0].device,
            name=f"LRPCA stage {stage} ({phase})",
            step_offset=result.steps,
        )
        model.zero_grad(set_to_none=True)
        for rec in res.history:
            rec.update(stage=stage, phase=phase, step=result.steps + rec["step"])
            result.history.append(rec)
        result.steps += res.steps
        result.seconds += res.seconds
        result.step_losses += res.step_losses
        rec = {
            "stage": stage,
            "phase": phase,
            "steps": n_steps,
            "val_loss": res.best,
            "thresholds": model.log_thresholds().detach()[: stage + 2].exp().tolist(),
            "eta": model.trained_steps().detach()[:stage].tolist(),
        }
        result.metrics.setdefault("stages", []).append(rec)
        if progress:
            progress(rec)
    result.best = result.metrics["stages"][-1]["val_loss"]
    return result


@torch.no_grad()
def _start_threshold(model, val, rank, stage, decays) -> None:
    """Set zeta_stage to the decay of zeta_{stage-1} (``threshold_decay`` or one of ``decays``)
    with the lowest validation loss at ``stage`` layers."""
    prev = float(model.log_zeta[stage])
    new = model.log_zeta[stage + 1]
    best = None
    for d in sorted({model.threshold_decay, *decays}):
        new.fill_(prev + math.log(d))
        loss = _val_loss(model, val, rank, stage)
        if best is None or loss < best[0]:
            best = (loss, d)
    new.fill_(prev + math.log(best[1]))


@torch.no_grad()
def _val_loss(model, val, rank, n_layers) -> float:
    loss = float(lrpca_loss(model, *val, rank, n_layers))
    check_finite(loss, f"LRPCA validation loss at {n_layers} layers")
    return loss


@torch.no_grad()
def predict(
    model: LRPCA, y: torch.Tensor, rank: int, n_layers: int | None = None, batch_size: int = 64
):
    """``(L_hat, S_hat)`` for all matrices of ``y``, in batches."""
    outs = [model(y[i : i + batch_size], rank, n_layers) for i in range(0, len(y), batch_size)]
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])
