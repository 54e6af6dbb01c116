r"""Learned ISTA: LISTA, LISTA-CP and ALISTA, their layer-wise training, and their baselines.

All networks unfold :math:`T` iterations of ISTA for
:math:`\min_z \tfrac12\|x - Az\|^2 + \lambda\|z\|_1`
(:func:`deepunfold.solvers.proximal_gradient.ista`) and learn some of each iteration's quantities.
With :math:`\eta_\theta` the soft threshold
(:func:`deepunfold.ops.prox.soft_threshold`) and :math:`z^0 = 0`, layer :math:`t` computes

* **LISTA** (Gregor & LeCun, 2010), untied:
  :math:`z^{t+1} = \eta_{\theta^t}(W_e^t x + S^t z^t)` with learned :math:`W_e^t \in
  \mathbb R^{n\times m}`, :math:`S^t \in \mathbb R^{n\times n}` (none in the first layer,
  where :math:`z^0 = 0`) and :math:`\theta^t`; ISTA is :math:`W_e = A^\top/L`,
  :math:`S = I - A^\top A/L`, :math:`\theta = \lambda/L`, which is the initialisation.
* **LISTA-CP** (Chen et al., 2018), coupled weights :math:`S^t = I - W^{t\top} A`:
  :math:`z^{t+1} = \eta_{\theta^t}\big(z^t + W^{t\top}(x - A z^t)\big)`, learned
  :math:`W^t \in \mathbb R^{m\times n}` (initialised to :math:`A/L`) and :math:`\theta^t`.
* **ALISTA** (Liu et al., 2019): :math:`z^{t+1} = \eta_{\theta^t}\big(z^t - \gamma^t
  \tilde W^\top(A z^t - x)\big)` with the *analytic* weight :math:`\tilde W` of
  :func:`analytic_weight` computed once from :math:`A`; only the step sizes
  :math:`\gamma^t` and thresholds :math:`\theta^t` are learned (2 parameters per layer).

**Support selection** (Chen et al. 2018, used by ALISTA): in layer :math:`t` the entries whose
magnitude is among the largest :math:`p^t` percent of the signal *and* above the threshold
pass through unshrunk; the rest are soft-thresholded. :math:`p^t = \min(p_\Delta (t+1),
p_{\max})`, e.g. :math:`p_\Delta = 1.2`, :math:`p_{\max} = 13` as in the reference code.

**Training** (:func:`train_layerwise`) follows the reference implementations of Chen et al.
(2018) and Liu et al. (2019): for :math:`t = 1 \dots T`, first train only layer :math:`t`'s
parameters on the loss of the :math:`t`-layer network's output, then fine-tune all layers
so far at decayed learning rates (``lr * 0.2``, ``lr * 0.02``); Adam; each stage stops early
when the validation NMSE has not improved for ``patience`` evaluations and keeps its best
weights. Batches are drawn from a seeded generator, so training is a function of its seed.

Shapes follow :mod:`deepunfold.solvers.proximal_gradient`: ``x`` is ``(batch, m)``,
``z`` ``(batch, n)``, ``A`` ``(m, n)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from deepunfold.ops.metrics import fraction_zeros, nmse_db
from deepunfold.ops.prox import soft_threshold
from deepunfold.solvers.proximal_gradient import fista, ista, lipschitz_constant
from deepunfold.train.checkpoint import Configurable, load_model
from deepunfold.train.loop import BatchSampler, FitResult, count_parameters, fit

__all__ = [
    "MODELS",
    "analytic_weight",
    "support_selection_percent",
    "shrink",
    "UnfoldedISTA",
    "LISTA",
    "LISTACP",
    "ALISTA",
    "build_model",
    "parameter_table",
    "TrainConfig",
    "train_layerwise",
    "layer_metrics",
    "solver_curve",
    "iterations_to_reach",
]


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def analytic_weight(A: torch.Tensor) -> torch.Tensor:
    r"""ALISTA's analytic weight :math:`\arg\min_W \|W^\top A\|_F^2` s.t. :math:`(W^\top A)_{ii}=1`.

    The problem separates over columns: :math:`w_i` minimises :math:`\|A^\top w_i\|^2`
    subject to :math:`a_i^\top w_i = 1`. Its Lagrange condition
    :math:`A A^\top w_i = \mu_i a_i` gives the closed form

    .. math::
        w_i = \frac{(A A^\top)^{+} a_i}{a_i^\top (A A^\top)^{+} a_i},

    (pseudo-inverse for a rank-deficient :math:`A A^\top`), computed in float64. For a square
    invertible :math:`A` this is :math:`W = A^{-\top}` and :math:`W^\top A = I`.

    Args:
        A: ``(m, n)`` dictionary.

    Returns:
        ``(m, n)`` weight, same dtype as ``A``.
    """
    if A.ndim != 2:
        raise ValueError(f"A must be 2-D (m, n), got shape {tuple(A.shape)}")
    A64 = A.double()
    gram = A64 @ A64.T
    P = torch.linalg.pinv(gram, hermitian=True) @ A64  # columns (A A^T)^+ a_i
    denom = (A64 * P).sum(0)  # a_i^T (A A^T)^+ a_i
    if torch.any(denom.abs() < 1e-12):
        raise ValueError("a column of A lies outside the range of A A^T: no analytic weight")
    return (P / denom).to(A.dtype)


def support_selection_percent(layer: int, percent_step: float, percent_max: float) -> float:
    """Percentage of entries passed unshrunk in ``layer`` (0-based): ``min(step*(t+1), max)``."""
    return min(percent_step * (layer + 1), percent_max)


def shrink(u: torch.Tensor, theta: torch.Tensor, percent: float = 0.0) -> torch.Tensor:
    r"""Soft threshold with optional support selection.

    ``percent = 0`` is :math:`\eta_\theta(u)` (:func:`deepunfold.ops.prox.soft_threshold`).
    Otherwise the entries of each row that are among its ``ceil(percent/100 * n)`` largest in
    magnitude and exceed :math:`\theta` are kept as they are, the others are soft-thresholded.
    A negative learned threshold acts as 0 (it is clamped, so the operator stays a prox).
    """
    theta = theta.clamp_min(0.0)
    out = soft_threshold(u, theta)
    if percent <= 0:
        return out
    k = max(1, math.ceil(percent / 100.0 * u.shape[-1]))
    mag = u.abs()
    kth = torch.topk(mag, k, dim=-1).values[..., -1:]
    keep = (mag >= kth) & (mag > theta)
    return torch.where(keep, u, out)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class UnfoldedISTA(Configurable, nn.Module):
    """Base of the unfolded networks: ``n_layers`` layers applied to ``z^0 = 0``.

    Subclasses implement :meth:`layer` and :meth:`layer_parameters`. The parameters of the
    module are exactly the learned ones; the dictionary ``A`` (and ALISTA's weight) are
    buffers. The constructor's arguments, ``A`` included, are the model's :attr:`config`
    (:func:`deepunfold.train.checkpoint.save_model` saves them).
    """

    name = "unfolded"

    def __init__(
        self,
        A: torch.Tensor,
        n_layers: int,
        support_selection: bool = False,
        percent_step: float = 1.2,
        percent_max: float = 13.0,
    ):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be at least 1, got {n_layers}")
        if A.ndim != 2:
            raise ValueError(f"A must be 2-D (m, n), got shape {tuple(A.shape)}")
        self.n_layers = int(n_layers)
        self.m, self.n = A.shape
        self.register_buffer("A", A.detach().clone().float())
        self.support_selection = bool(support_selection)
        self.percent_step = float(percent_step)
        self.percent_max = float(percent_max)
        self.step0 = 1.0 / lipschitz_constant(self.A.double())

    def percent(self, t: int) -> float:
        if not self.support_selection:
            return 0.0
        return support_selection_percent(t, self.percent_step, self.percent_max)

    def layer(self, t: int, x: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        """Layer ``t`` (0-based): ``z^{t+1}`` from ``z^t`` (``None`` stands for ``z^0 = 0``)."""
        raise NotImplementedError

    def layer_parameters(self, t: int) -> list[nn.Parameter]:
        """The learned parameters of layer ``t`` (0-based)."""
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, n_layers: int | None = None, return_all: bool = False
    ) -> torch.Tensor | list[torch.Tensor]:
        """Apply the first ``n_layers`` layers (all by default) to ``x`` of shape ``(B, m)``.

        Returns ``z^{n_layers}`` ``(B, n)``, or the list ``[z^1, ..., z^{n_layers}]``.
        """
        n_layers = self.n_layers if n_layers is None else n_layers
        if not 0 <= n_layers <= self.n_layers:
            raise ValueError(f"n_layers must be in [0, {self.n_layers}], got {n_layers}")
        if x.shape[-1] != self.m:
            raise ValueError(f"signals have dimension {x.shape[-1]}, the model expects {self.m}")
        z, outs = None, []
        for t in range(n_layers):
            z = self.layer(t, x, z)
            outs.append(z)
        if return_all:
            return outs
        if z is None:
            return x.new_zeros(x.shape[0], self.n)
        return z


class LISTA(UnfoldedISTA):
    r"""LISTA with untied per-layer :math:`W_e^t`, :math:`S^t`, :math:`\theta^t`.

    Trainable parameters: :math:`T(nm + 1) + (T - 1) n^2`.
    """

    name = "lista"

    def __init__(self, A: torch.Tensor, n_layers: int, lam: float = 0.1, **kw):
        super().__init__(A, n_layers, **kw)
        We = self.A.T * self.step0
        S = torch.eye(self.n) - self.step0 * (self.A.T @ self.A)
        self.We = nn.ParameterList([nn.Parameter(We.clone()) for _ in range(n_layers)])
        self.S = nn.ParameterList([nn.Parameter(S.clone()) for _ in range(n_layers - 1)])
        self.theta = nn.ParameterList(
            [nn.Parameter(torch.tensor(lam * self.step0)) for _ in range(n_layers)]
        )

    def layer(self, t, x, z):
        u = x @ self.We[t].T
        if z is not None:
            u = u + z @ self.S[t - 1].T
        return shrink(u, self.theta[t], self.percent(t))

    def layer_parameters(self, t):
        return [self.We[t], self.theta[t]] + ([self.S[t - 1]] if t > 0 else [])


class LISTACP(UnfoldedISTA):
    r"""LISTA-CP: coupled weights, :math:`z^{t+1} = \eta_{\theta^t}(z^t + W^{t\top}(x - Az^t))`.

    Trainable parameters: :math:`T(mn + 1)`.
    """

    name = "lista_cp"

    def __init__(self, A: torch.Tensor, n_layers: int, lam: float = 0.1, **kw):
        super().__init__(A, n_layers, **kw)
        W = self.A * self.step0
        self.W = nn.ParameterList([nn.Parameter(W.clone()) for _ in range(n_layers)])
        self.theta = nn.ParameterList(
            [nn.Parameter(torch.tensor(lam * self.step0)) for _ in range(n_layers)]
        )

    def layer(self, t, x, z):
        if z is None:
            u = x @ self.W[t]
        else:
            u = z + (x - z @ self.A.T) @ self.W[t]
        return shrink(u, self.theta[t], self.percent(t))

    def layer_parameters(self, t):
        return [self.W[t], self.theta[t]]


class ALISTA(UnfoldedISTA):
    r"""ALISTA: analytic weight :math:`\tilde W` (a buffer), learned :math:`\gamma^t, \theta^t`.

    Trainable parameters: :math:`2T`. The steps start at :math:`1/\|\tilde W^\top A\|_2` and
    the thresholds at :math:`\lambda` times that step.
    """

    name = "alista"

    def __init__(
        self, A: torch.Tensor, n_layers: int, lam: float = 0.1, support_selection=True, **kw
    ):
        super().__init__(A, n_layers, support_selection=support_selection, **kw)
        self.register_buffer("W", analytic_weight(self.A.double()).float())
        gamma0 = 1.0 / float(torch.linalg.matrix_norm(self.W.double().T @ self.A.double(), ord=2))
        self.gamma = nn.ParameterList([nn.Parameter(torch.tensor(gamma0)) for _ in range(n_layers)])
        self.theta = nn.ParameterList(
            [nn.Parameter(torch.tensor(lam * gamma0)) for _ in range(n_layers)]
        )

    def layer(self, t, x, z):
        if z is None:
            u = self.gamma[t] * (x @ self.W)
        else:
            u = z - self.gamma[t] * ((z @ self.A.T - x) @ self.W)
        return shrink(u, self.theta[t], self.percent(t))

    def layer_parameters(self, t):
        return [self.gamma[t], self.theta[t]]


MODELS: dict[str, type[UnfoldedISTA]] = {"lista": LISTA, "lista_cp": LISTACP, "alista": ALISTA}


def build_model(
    name: str,
    A: torch.Tensor,
    n_layers: int,
    lam: float = 0.1,
    support_selection: bool = False,
    percent_step: float = 1.2,
    percent_max: float = 13.0,
) -> UnfoldedISTA:
    """Build the model ``name`` (``"lista"``, ``"lista_cp"`` or ``"alista"``) for ``A``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](
        A,
        n_layers,
        lam=lam,
        support_selection=support_selection,
        percent_step=percent_step,
        percent_max=percent_max,
    )


def parameter_table(paths) -> pd.DataFrame:
    """Trainable parameters of each saved model, with ISTA / FISTA (none) for each setting.

    Columns: ``setting``, ``method``, ``layers``, ``m``, ``n``, ``trainable_parameters``,
    ``per_layer`` (the formula's value for one layer, for reading the table).
    """
    rows, seen = [], set()
    for path in paths:
        model, meta = load_model(path, UnfoldedISTA, metadata=True)
        m, n, T = model.m, model.n, model.n_layers
        setting = meta.get("setting", "")
        if setting not in seen:
            seen.add(setting)
            for solver in ("ista", "fista"):
                rows.append(
                    {
                        "setting": setting,
                        "method": solver,
                        "layers": 0,
                        "m": m,
                        "n": n,
                        "trainable_parameters": 0,
                        "formula": "none (A and lambda given)",
                    }
                )
        formula = {
            "lista": "T(nm + 1) + (T - 1) n^2",
            "lista_cp": "T(mn + 1)",
            "alista": "2T",
        }[model.name]
        rows.append(
            {
                "setting": setting,
                "method": model.name,
                "layers": T,
                "m": m,
                "n": n,
                "trainable_parameters": count_parameters(model),
                "formula": formula,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Layer-wise training schedule (per stage: Adam, minibatches, early stopping).

    Attributes:
        batch_size: signals per step.
        lr: learning rate of the stage that trains the new layer alone.
        lr_decays: factors of ``lr`` for the following fine-tuning stages of all layers so far.
        max_steps: step budget of each stage.
        val_every: steps between validation evaluations.
        patience: evaluations without improvement before a stage stops.
        seed: seed of the batch order.
    """

    batch_size: int = 64
    lr: float = 5e-4
    lr_decays: tuple[float, ...] = (0.2, 0.02)
    max_steps: int = 2000
    val_every: int = 100
    patience: int = 5
    seed: int = 0

    def __post_init__(self):
        for key in ("batch_size", "max_steps", "val_every", "patience"):
            if getattr(self, key) < 1:
                raise ValueError(f"TrainConfig.{key} must be at least 1, got {getattr(self, key)}")
        if self.lr <= 0 or any(d <= 0 for d in self.lr_decays):
            raise ValueError("learning rate and its decays must be positive")
        self.lr_decays = tuple(float(d) for d in self.lr_decays)


def _evaluate(model, x, z, n_layers, batch=4096):
    with torch.inference_mode():
        out = torch.cat([model(x[i : i + batch], n_layers) for i in range(0, len(x), batch)])
    return out


def train_layerwise(
    model: UnfoldedISTA,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    cfg: TrainConfig,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    progress: Callable | None = None,
    device: str | torch.device = "cpu",
) -> FitResult:
    """Train ``model`` layer by layer, in place (see the module docstring for the schedule).

    Every stage is one :func:`~deepunfold.train.loop.fit` of that stage's parameters; all
    stages draw their batches from one seeded stream. Loss: :math:`\\frac1B\\sum_b
    \\|z^t_b - z_b\\|^2` of the current depth ``t``. The test set, if given, is only
    *evaluated* after each layer (never used for any decision).

    Args:
        model: an :class:`UnfoldedISTA` (its current weights are the initialisation).
        train, val: ``(x, z)`` pairs, float32.
        cfg: the schedule.
        test: optional held-out pairs for the per-layer table.
        progress: optional ``progress(message)`` called after every stage (e.g. a tqdm
            ``set_postfix_str`` or a logger).
        device: where the model and the pairs are moved for training (the model stays there;
            ``model.cpu()`` before saving). The batch order is drawn on the CPU on every
            device; on the CPU (default) the arithmetic is exactly that of a call without it.

    Returns:
        a :class:`~deepunfold.train.loop.FitResult` whose ``history`` has one record per
        validation evaluation (``layer``, ``stage``, ``lr``, ``step`` (global),
        ``train_nmse_db`` on the batches since the last evaluation, ``val_nmse_db``),
        ``steps`` the steps of all stages, and ``metrics["layers"]`` one record per layer
        ``t``: NMSE (dB) and fraction of zeros on the validation (and test, if given) set of
        the ``t``-layer network right after its layer-wise training finished (the depth-``t``
        model of the literature's curves).
    """
    model.to(device)
    train, val = tuple(a.to(device) for a in train), tuple(a.to(device) for a in val)
    if test is not None:
        test = tuple(a.to(device) for a in test)
    x_val, z_val = val
    if len(train[0]) < 1 or len(x_val) < 1:
        raise ValueError("training needs at least one training and one validation pair")
    stream = BatchSampler(len(train[0]), cfg.batch_size, cfg.seed, mode="stream")
    sums = {"err": 0.0, "ref": 0.0}  # squared errors and norms since the last evaluation

    rows, layer_rows, step, seconds = [], [], 0, 0.0
    for t in range(model.n_layers):
        depth = t + 1
        stages = [(0, cfg.lr, False)] + [
            (i + 1, cfg.lr * d, True) for i, d in enumerate(cfg.lr_decays)
        ]
        for stage, lr, all_layers in stages:
            params = [p for s in range(depth) for p in model.layer_parameters(s)]
            if not all_layers:
                params = model.layer_parameters(t)

            def loss_fn(model, batch, t=t, depth=depth, all_layers=all_layers):
                xb, zb = batch
                if all_layers or t == 0:
                    out = model(xb, depth)
                else:
                    with torch.no_grad():  # frozen earlier layers: no graph through them
                        prev = model(xb, t)
                    out = model.layer(t, xb, prev)
                err = (out - zb).pow(2).sum(-1)
                sums["err"] += float(err.detach().sum())
                sums["ref"] += float(zb.pow(2).sum())
                return err.mean()

            def evaluate(model, depth=depth):
                return {"val_nmse_db": nmse_db(_evaluate(model, x_val, z_val, depth), z_val)}

            sums["err"] = sums["ref"] = 0.0
            res = fit(
                model,
                train,
                loss_fn,
                max_steps=cfg.max_steps,
                sampler=stream,
                optimizer=lambda p, lr=lr: torch.optim.Adam(p, lr=lr),
                params=params,
                evaluate=evaluate,
                eval_every=cfg.val_every,
                eval_initial=True,
                monitor="val_nmse_db",
                patience=cfg.patience,
                check_monitor=True,
                callback=lambda rec: _train_nmse(rec, sums),
                device=device,
                name=f"{model.name} layer {depth}",
                step_offset=step,
            )
            for rec in res.history[1:]:  # the first is the stage's initial evaluation
                rows.append(
                    {
                        "layer": depth,
                        "stage": stage,
                        "lr": lr,
                        "step": step + rec["step"],
                        "train_nmse_db": rec["train_nmse_db"],
                        "val_nmse_db": rec["val_nmse_db"],
                    }
                )
            step += res.steps
            seconds += res.seconds
            if progress is not None:
                progress(
                    f"layer {depth} stage {stage}: val NMSE {res.best:.2f} dB after "
                    f"{res.steps} steps"
                )
        row = {"layer": depth, "steps": step}
        for name, pair in (("val", val), ("test", test)):
            if pair is not None:
                out = _evaluate(model, pair[0], pair[1], depth)
                row[f"{name}_nmse_db"] = nmse_db(out, pair[1])
                row[f"{name}_fraction_zeros"] = fraction_zeros(out)
        layer_rows.append(row)
    return FitResult(history=rows, steps=step, seconds=seconds, metrics={"layers": layer_rows})


def _train_nmse(rec: dict, sums: dict) -> None:
    """Add the training NMSE (dB) since the last evaluation to ``rec``; restart the sums."""
    rec["train_nmse_db"] = 10 * math.log10(max(sums["err"], 1e-300) / max(sums["ref"], 1e-300))
    sums["err"] = sums["ref"] = 0.0


# --------------------------------------------------------------------------------------------
# Evaluation and baselines
# --------------------------------------------------------------------------------------------


def layer_metrics(model: UnfoldedISTA, x: torch.Tensor, z: torch.Tensor) -> pd.DataFrame:
    """NMSE (dB) and fraction of zeros of every intermediate output ``z^1 .. z^T``."""
    with torch.inference_mode():
        outs = model(x, return_all=True)
    return pd.DataFrame(
        {
            "layer": range(1, len(outs) + 1),
            "nmse_db": [nmse_db(o, z) for o in outs],
            "fraction_zeros": [fraction_zeros(o) for o in outs],
        }
    )


def solver_curve(
    x: torch.Tensor,
    z: torch.Tensor,
    A: torch.Tensor,
    lam: float,
    n_iter: int,
    accelerated: bool = False,
    record_every: Callable[[int], bool] | None = None,
) -> pd.DataFrame:
    """NMSE (dB) and fraction of zeros of ISTA (or FISTA) iterates ``1 .. n_iter`` against ``z``.

    Runs :func:`deepunfold.solvers.proximal_gradient.ista` /
    :func:`~deepunfold.solvers.proximal_gradient.fista` from zero with step ``1/L`` and no early
    stop. ``record_every(k)`` selects the iterations to score
    (all by default).
    """
    rows = []

    def score(k, zk):
        if record_every is None or record_every(k):
            rows.append(
                {"iteration": k, "nmse_db": nmse_db(zk, z), "fraction_zeros": fraction_zeros(zk)}
            )

    solver = fista if accelerated else ista
    solver(x, A.to(x.dtype), lam, max_iter=n_iter, tol=0.0, record_history=False, callback=score)
    return pd.DataFrame(rows)


def iterations_to_reach(curve: pd.DataFrame, target_db: float) -> int | None:
    """First iteration of a :func:`solver_curve` with NMSE at or below ``target_db``."""
    hit = curve[curve["nmse_db"] <= target_db]
    return int(hit["iteration"].iloc[0]) if len(hit) else None
