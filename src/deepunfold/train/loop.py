"""The one training loop of every learned model, and what it is built from.

:func:`fit` trains a model by minibatch gradient steps: seeded batches
(:class:`BatchSampler`, per-epoch permutations or a step-based stream), an optimiser (given or
built), an optional per-step scheduler and batch transform (augmentation drawing from the
sampler's generator), evaluation every few steps or every epoch, and early stopping with
best-weights restore (:class:`EarlyStopping`) or keep-best without stopping. Every trainer
of the library (LISTA's layer-wise stages, the unfolded RPCA, ML-ISTA, the CSC classifiers,
the tiny CLIP) is a call of it; :func:`accuracy` is their one classification metric.

A training run that diverges must fail loudly and leave no checkpoint behind that a later run
could mistake for a trained model (:func:`check_finite`); checkpoints are written by
:func:`deepunfold.train.checkpoint.save_model` only once training finished with finite weights.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = [
    "EarlyStopping",
    "NonFiniteError",
    "check_finite",
    "count_parameters",
    "BatchSampler",
    "FitResult",
    "fit",
    "accuracy",
]


class EarlyStopping:
    """Keep the weights of the best validation loss; stop after ``patience`` bad evaluations.

    Created with the loss of the current weights (the initialisation counts as a
    candidate, so training that never improves restores it). Each :meth:`update` with a new
    validation loss either records a new best (strictly lower: ties keep the earlier
    weights) and copies ``model.state_dict()``, or counts one more evaluation without
    improvement; :attr:`stop` turns true once ``patience`` of those follow the last best.
    :meth:`restore` loads the best weights back into ``model``.

    Args:
        model: the module being trained (its current state is the first snapshot).
        initial_loss: validation loss of the current weights.
        patience: evaluations without improvement before :attr:`stop` (at least 1).
    """

    def __init__(self, model: torch.nn.Module, initial_loss: float, patience: int):
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}")
        self.model, self.patience = model, int(patience)
        self.best = initial_loss
        self.best_state = copy.deepcopy(model.state_dict())
        self.bad = 0
        self.stop = False

    def update(self, loss: float) -> bool:
        """Record a validation loss; returns whether it is a new best."""
        if loss < self.best:
            self.best, self.bad, self.stop = loss, 0, False
            self.best_state = copy.deepcopy(self.model.state_dict())
            return True
        self.bad += 1
        self.stop = self.bad >= self.patience
        return False

    def restore(self) -> None:
        """Load the best weights seen (possibly the initial ones) into the model."""
        self.model.load_state_dict(self.best_state)


class NonFiniteError(FloatingPointError):
    """A loss, gradient or parameter became NaN or infinite during training."""


def check_finite(value, what: str, step: int | None = None) -> None:
    """Raise :class:`NonFiniteError` if ``value`` (a number or tensor) has NaN/inf entries.

    Args:
        value: the loss (float or tensor), or any tensor.
        what: what it is, for the message (``"training loss of LISTA layer 3"``).
        step: the optimisation step, for the message.
    """
    if isinstance(value, torch.Tensor):
        ok = bool(torch.isfinite(value).all())
    else:
        ok = math.isfinite(float(value))
    if not ok:
        where = f" at step {step}" if step is not None else ""
        raise NonFiniteError(
            f"{what} is not finite{where}: training diverged (lower the learning rate or check "
            "the data). No checkpoint was written."
        )


def count_parameters(model: torch.nn.Module | None) -> int:
    """Number of trainable scalars of ``model`` (``None``, e.g. ISTA/FISTA, has none)."""
    if model is None:
        return 0
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class BatchSampler:
    """Seeded minibatch indices: per-epoch permutations, a stream of steps, or fresh draws.

    All draws come from one CPU generator seeded with ``seed`` (:attr:`generator`; a batch
    transform of :func:`fit` draws from it too), so a run is a function of its seed on every
    device.

    * ``"epoch"``: :meth:`epoch` yields the batches of one new permutation of ``range(n)``,
      the last one partial when ``batch_size`` does not divide ``n``.
    * ``"stream"``: :meth:`next` returns the next ``min(batch_size, n)`` indices of the
      current permutation and draws a new one when fewer than a batch remain (the first on
      the first call); one stream can feed several :func:`fit` calls (LISTA's stages).
    * ``"fresh"``: :meth:`next` returns the first ``batch_size`` indices of a new
      permutation on every call.
    """

    MODES = ("epoch", "stream", "fresh")

    def __init__(self, n: int, batch_size: int, seed: int = 0, mode: str = "epoch"):
        if mode not in self.MODES:
            raise ValueError(f"unknown batch mode {mode!r}; expected one of {self.MODES}")
        if n < 1 or batch_size < 1:
            raise ValueError(f"need at least one sample and batch_size >= 1, got {n}, {batch_size}")
        self.n, self.batch_size, self.mode = int(n), int(batch_size), mode
        self.generator = torch.Generator(device="cpu").manual_seed(int(seed))
        self._order: torch.Tensor | None = None
        self._pos = 0

    def steps_per_epoch(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def epoch(self) -> Iterator[torch.Tensor]:
        """The batches of one epoch (``"epoch"`` mode)."""
        if self.mode != "epoch":
            raise RuntimeError(f"epoch() needs mode 'epoch', this sampler is {self.mode!r}")
        order = torch.randperm(self.n, generator=self.generator)
        for start in range(0, self.n, self.batch_size):
            yield order[start : start + self.batch_size]

    def next(self) -> torch.Tensor:
        """The next batch (``"stream"`` or ``"fresh"`` mode)."""
        if self.mode == "fresh":
            return torch.randperm(self.n, generator=self.generator)[: self.batch_size]
        if self.mode != "stream":
            raise RuntimeError("next() needs mode 'stream' or 'fresh'; use epoch()")
        batch = min(self.batch_size, self.n)
        if self._order is None or self._pos + batch > self.n:
            self._order, self._pos = torch.randperm(self.n, generator=self.generator), 0
        idx = self._order[self._pos : self._pos + batch]
        self._pos += batch
        return idx


@dataclass
class FitResult:
    """What :func:`fit` returns besides the trained model (changed in place).

    Attributes:
        history: one record per evaluation: ``step`` (steps of this fit so far), ``epoch``
            (epoch mode), ``train_loss`` (mean per-sample training loss since the previous
            evaluation; ``None`` for the initial one), the evaluation's metrics and ``best``
            (whether the monitored metric improved; with a monitor only). No wall time: a
            history is a result, the same on every run.
        steps: optimisation steps taken.
        epochs: epochs completed (epoch mode; 0 otherwise).
        best: best value of the monitored metric (``None`` without a monitor).
        best_record: index in ``history`` of the kept weights' evaluation (``None`` without a
            monitor, or when the initial weights were kept without an initial evaluation).
        stopped_early: whether early stopping ended training before its budget.
        step_losses: the training loss of every step.
        seconds: wall time of the whole fit.
        metrics: final scores a trainer adds (e.g. the test accuracy of the kept weights).
    """

    history: list[dict] = field(default_factory=list)
    steps: int = 0
    epochs: int = 0
    best: float | None = None
    best_record: int | None = None
    stopped_early: bool = False
    step_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    metrics: dict = field(default_factory=dict)

    @property
    def best_epoch(self) -> int:
        """Epoch of the kept weights (0: the initial ones)."""
        if self.best_record is None:
            return 0
        return self.history[self.best_record].get("epoch", 0)


def _build_optimizer(optimizer, params, lr):
    if optimizer is None:
        return torch.optim.Adam(params, lr=lr)
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    return optimizer(params)


def fit(
    model: torch.nn.Module,
    data: Sequence[torch.Tensor],
    loss_fn: Callable[[torch.nn.Module, tuple[torch.Tensor, ...]], torch.Tensor],
    *,
    epochs: int | None = None,
    max_steps: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    sampler: BatchSampler | None = None,
    optimizer: torch.optim.Optimizer | Callable | None = None,
    params: Iterable[torch.nn.Parameter] | None = None,
    lr: float = 1e-3,
    scheduler: Callable | None = None,
    batch_transform: Callable | None = None,
    evaluate: Callable[[torch.nn.Module], dict] | None = None,
    eval_every: int | None = None,
    eval_initial: bool = False,
    monitor: str | None = None,
    maximize: bool = False,
    patience: int | None = None,
    check_monitor: bool = False,
    callback: Callable[[dict], None] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    name: str = "model",
    step_offset: int = 0,
) -> FitResult:
    """Train ``model`` in place by minibatch gradient steps on ``loss_fn``.

    Each step takes the batch ``tuple(t[idx] for t in data)`` of the sampler's indices, passes
    it through ``batch_transform(batch, generator)`` if given, computes
    ``loss = loss_fn(model, batch)``, checks it is finite (:func:`check_finite`; a diverged
    run raises and leaves no checkpoint), and steps the optimiser (and the scheduler).

    Args:
        model: the module; moved to ``device`` and left there (``model.cpu()`` before saving).
        data: tensors indexed along their first axis by the batch indices; moved to
            ``device``. The indices are drawn on the CPU, so a run makes the same batches on
            every device; on the CPU the arithmetic is that of a loop without ``device``.
        loss_fn: ``loss_fn(model, batch)``, a scalar tensor (a mean over the batch; the
            recorded ``train_loss`` weighs each step's loss by its batch size).
        epochs: epoch mode, ``epochs`` passes over one permutation each (``model.train()`` at
            the start of each).
        max_steps: step mode, ``max_steps`` batches of a stream (``model.train()`` at the
            start and after each evaluation). Exactly one of ``epochs`` / ``max_steps``.
        batch_size, seed: build the sampler (``"epoch"`` or ``"stream"``) unless ``sampler``
            is given (a shared stream, or ``"fresh"`` draws).
        optimizer: an optimiser, a factory ``optimizer(params)``, or ``None`` for
            ``Adam(params, lr)``; ``params`` defaults to ``model.parameters()``.
        scheduler: ``scheduler(optimizer)``, a learning-rate scheduler stepped after every
            optimiser step.
        batch_transform: ``batch_transform(batch, generator)``, e.g. augmentation drawing from
            the sampler's generator after the batch's indices.
        evaluate: ``evaluate(model)``, a dict of metrics recorded in the history; called every
            ``eval_every`` steps and after the last step (step mode) or after every epoch
            (epoch mode, ``eval_every=None``), and before training with ``eval_initial``.
        monitor: the metric of ``evaluate`` whose best (lowest, or highest with ``maximize``;
            ties keep the earlier weights) weights are restored at the end. The initial
            weights are a candidate when ``eval_initial``.
        patience: stop after that many evaluations without improvement; ``None``: keep the
            best without stopping early.
        check_monitor: raise :class:`NonFiniteError` when a monitored value after a training
            step is not finite.
        callback: ``callback(record)`` after every evaluation except the initial one (logs).
        progress: a tqdm bar over the steps or epochs (off by default; scripts turn it on).
        name: the model's name in error messages; ``step_offset`` is added to the step in them.
    """
    from tqdm import tqdm

    if (epochs is None) == (max_steps is None):
        raise ValueError("fit needs exactly one of epochs and max_steps")
    budget = epochs if epochs is not None else max_steps
    if budget < 1:
        raise ValueError(f"fit needs at least one epoch or step, got {budget}")
    if monitor is not None and evaluate is None:
        raise ValueError("a monitored metric needs an evaluate function")
    if patience is not None and monitor is None:
        raise ValueError("early stopping needs a monitored metric")
    model.to(device)
    data = tuple(t.to(device) for t in data)
    n = len(data[0])
    if sampler is None:
        if batch_size is None:
            raise ValueError("fit needs batch_size or a sampler")
        sampler = BatchSampler(n, batch_size, seed, "epoch" if epochs is not None else "stream")
    opt = _build_optimizer(optimizer, model.parameters() if params is None else params, lr)
    sched = scheduler(opt) if scheduler is not None else None
    sign = -1.0 if maximize else 1.0
    result, start = FitResult(), time.perf_counter()
    stopper, bar = None, tqdm(total=budget, desc=name, disable=not progress)

    def record(step: int, epoch: int | None, train_loss: float | None) -> dict:
        rec = {"step": step}
        if epochs is not None:
            rec["epoch"] = epoch
        rec["train_loss"] = train_loss
        rec.update(evaluate(model))
        return rec

    def finish(rec: dict, initial: bool = False) -> bool:
        """Record an evaluation; returns whether training stops."""
        nonlocal stopper
        if monitor is not None:
            value = rec[monitor]
            if check_monitor and not initial:
                check_finite(value, f"{monitor} of {name}", step_offset + rec["step"])
            if initial:  # the initial weights are the first candidate
                stopper = EarlyStopping(model, sign * value, max_evals)
                rec["best"] = True
            else:
                rec["best"] = stopper.update(sign * value)
            if rec["best"]:
                result.best_record = len(result.history)
        result.history.append(rec)
        if callback is not None and not initial:
            callback(rec)
        return stopper is not None and stopper.stop

    # without early stopping the best weights are kept, and training never stops
    max_evals = patience if patience is not None else budget * sampler.steps_per_epoch() + 2
    if eval_initial and evaluate is not None:
        finish(record(0, 0, None), initial=True)
    elif monitor is not None:  # no candidate yet: the first evaluation will be better
        stopper = EarlyStopping(model, math.inf, max_evals)
    total, count, step = 0.0, 0, 0

    def train_step(idx: torch.Tensor) -> None:
        nonlocal total, count, step
        step += 1
        idx = idx.to(device) if idx.device != data[0].device else idx
        batch = tuple(t[idx] for t in data)
        if batch_transform is not None:
            batch = batch_transform(batch, sampler.generator)
        loss = loss_fn(model, batch)
        check_finite(loss, f"training loss of {name}", step_offset + step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        value = float(loss.detach())
        result.step_losses.append(value)
        total += value * len(idx)
        count += len(idx)

    def train_loss() -> float:
        nonlocal total, count
        mean = total / count
        total, count = 0.0, 0
        return mean

    stop = False
    if epochs is not None:
        for epoch in range(1, epochs + 1):
            model.train()
            for idx in sampler.epoch():
                train_step(idx)
                if evaluate is not None and eval_every is not None and step % eval_every == 0:
                    stop = finish(record(step, epoch, train_loss()))
                    model.train()
                    if stop:
                        break
            result.epochs = epoch
            if not stop and evaluate is not None and eval_every is None:
                stop = finish(record(step, epoch, train_loss()))
            bar.update(1)
            if stop:
                break
    else:
        model.train()
        for s in range(1, max_steps + 1):
            train_step(sampler.next())
            bar.update(1)
            if evaluate is not None and (
                (eval_every is not None and s % eval_every == 0) or s == max_steps
            ):
                stop = finish(record(step, None, train_loss()))
                if stop:
                    break
                model.train()
    bar.close()
    result.steps = step
    result.stopped_early = stop
    if stopper is not None:
        stopper.restore()
        result.best = sign * stopper.best
    result.seconds = time.perf_counter() - start
    return result


@torch.inference_mode()
def accuracy(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int = 500,
    noise_std: float = 0.0,
    seed: int = 0,
) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of a classifier on ``(x, y)``, in evaluation mode.

    Batches of ``batch_size`` are moved to the model's device. With ``noise_std > 0`` each
    batch gets additive Gaussian noise of that std (pixel units, not clipped), drawn on the
    CPU from a generator seeded with ``seed``, the same draw for every model. The accuracy
    does not depend on ``batch_size``; the loss, a float sum over batches, does in its last
    bits.
    """
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    correct, loss = 0, 0.0
    for i in range(0, len(y), batch_size):
        xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
        if noise_std > 0:
            xb = xb + noise_std * torch.randn(xb.shape, generator=gen).to(device)
        logits = model(xb)
        loss += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    return correct / len(y), loss / len(y)
