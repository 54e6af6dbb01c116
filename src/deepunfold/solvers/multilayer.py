r"""Multi-layer sparse model and its pursuits: layered thresholding, layered basis pursuit,
ML-ISTA and ML-FISTA (Papyan, Romano & Elad 2017; Sulam, Aberdam, Beck & Elad 2019).

Model (:math:`L` layers, here usually two):

.. math::
    y = D_1 \gamma_1 + w, \qquad \gamma_{i-1} = D_i \gamma_i, \qquad
    \|\gamma_i\|_0 \le s_i ,

so :math:`y = D_1 D_2 \gamma_2 + w` with both :math:`\gamma_2` and :math:`\gamma_1 = D_2
\gamma_2` sparse (:math:`D_2` has sparse atoms). Write :math:`D_{(i,L)} = D_i \cdots D_L`.

Pursuits, on batches (``y``: ``(batch, n_0)``, :math:`\gamma_i`: ``(batch, n_i)``):

* **layered thresholding** (the forward pass of a ReLU network):
  :math:`\hat\gamma_i = S_{\beta_i}(\mu_i D_i^\top \hat\gamma_{i-1})`, :math:`\hat\gamma_0 = y`;
* **layered basis pursuit**: :math:`\hat\gamma_i = \arg\min_\gamma \tfrac12\|\hat\gamma_{i-1}
  - D_i\gamma\|^2 + \lambda_i\|\gamma\|_1`, one Lasso per layer, here solved by running the
  layers' ISTA iterations side by side (iteration :math:`k` of layer :math:`i` takes the
  current iterate of layer :math:`i-1` as its signal; at convergence this is the layered BP);
* **ML-ISTA**, proximal gradient-mapping on the multi-layer basis pursuit

  .. math::
      (P):\ \min_{\gamma_L} \tfrac12\|y - D_{(1,L)}\gamma_L\|^2
      + \sum_{i<L} \lambda_i \|D_{(i+1,L)}\gamma_L\|_1 + \lambda_L\|\gamma_L\|_1 ,

  one iteration from :math:`z = \gamma_L^k`:
  :math:`\hat\gamma_L = z`, :math:`\hat\gamma_{i-1} = D_i\hat\gamma_i`, :math:`\gamma_0 = y`, and
  for :math:`i = 1..L`

  .. math::
      \gamma_i^{k+1} = S_{\tau_i}\big(\hat\gamma_i - \mu_i D_i^\top(\hat\gamma_{i-1}
      - \gamma_{i-1}^{k+1})\big), \qquad \tau_i = \lambda_i \textstyle\prod_{j \le i}\mu_j ,

  the nested updates of the task-6 lecture slides (docs/architecture.md, Glossary); for
  :math:`L = 2`, :math:`t = \mu_1\mu_2` is the outer step, :math:`\mu_1` the inner one. Steps
  default to :math:`\mu_i = 1/\|D_i\|_2^2`, inside
  the convergence range :math:`\mu_1 < 1/\|D_1\|^2`, :math:`t < 4\mu_1 / 3\|D_2\|^2`;
* **ML-FISTA**: the same update taken at the extrapolated point
  :math:`z = \gamma_L^{k+1} + \tfrac{t_k - 1}{t_{k+1}}(\gamma_L^{k+1} - \gamma_L^k)`.

From :math:`\gamma_L = 0` the first ML-ISTA iteration *is* layered thresholding with
thresholds :math:`\tau_i` on the scaled dictionaries :math:`\mu_i D_i` (the forward pass of a
CNN); with :math:`D_2 = I`, :math:`\mu_2 = 1`, :math:`\lambda_2 = 0` ML-ISTA is ISTA on
:math:`D_1`. Both facts are checked in the tests.

Layers are given as :class:`Layer` objects (synthesis :math:`\gamma \mapsto D\gamma` and
analysis :math:`v \mapsto D^\top v`), so the same pursuit code runs on dense matrices
(:func:`matrix_layer`) and on convolutional dictionaries (:func:`conv_layer`, used by
:mod:`deepunfold.unfolded.mlista`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from deepunfold.ops.conv_dictionary import ConvDictionary
from deepunfold.ops.metrics import relative_error
from deepunfold.ops.prox import soft_threshold
from deepunfold.solvers.proximal_gradient import Momentum, lipschitz_constant

__all__ = [
    "Layer",
    "matrix_layer",
    "conv_layer",
    "ml_objective",
    "layered_thresholding",
    "ml_ista_step",
    "PursuitResult",
    "ml_ista",
    "ml_fista",
    "layered_basis_pursuit",
    "default_steps",
    "thresholds_from_lambdas",
    "topk_thresholds",
]


@dataclass(frozen=True)
class Layer:
    """One layer's dictionary as a pair of linear maps on batches.

    Attributes:
        synthesis: :math:`\\gamma_i \\mapsto D_i \\gamma_i` (codes of layer i to layer i-1).
        analysis: :math:`v \\mapsto D_i^\\top v` (the adjoint).
    """

    synthesis: Callable[[torch.Tensor], torch.Tensor]
    analysis: Callable[[torch.Tensor], torch.Tensor]


def matrix_layer(D: torch.Tensor) -> Layer:
    """A :class:`Layer` for a dense ``(n_{i-1}, n_i)`` matrix acting on row batches."""
    return Layer(synthesis=lambda g: g @ D.T, analysis=lambda v: v @ D)


def conv_layer(W: torch.Tensor, stride: int, padding: int, in_shape: Sequence[int]) -> Layer:
    """A :class:`Layer` for the convolutional dictionary with filters ``W`` ``(C, M, k, k)``,
    ``stride`` and ``padding`` (:class:`~deepunfold.ops.conv_dictionary.ConvDictionary`) on
    images of shape ``in_shape = (M, H, W)``, acting on batches ``(batch, M, H, W)`` and codes
    ``(batch, C, H', W')``."""
    op, out_hw = ConvDictionary(stride, padding), tuple(in_shape[-2:])
    return Layer(
        synthesis=lambda g: op.synthesis(g, W, out_hw), analysis=lambda v: op.analysis(v, W)
    )


def default_steps(Ds: Sequence[torch.Tensor]) -> list[float]:
    r""":math:`\mu_i = 1/\|D_i\|_2^2` (power iteration)."""
    return [1.0 / lipschitz_constant(D) for D in Ds]


def thresholds_from_lambdas(lams: Sequence[float], steps: Sequence[float]) -> list[float]:
    r"""ML-ISTA thresholds :math:`\tau_i = \lambda_i \prod_{j \le i} \mu_j` for problem (P)."""
    if len(lams) != len(steps):
        raise ValueError(f"need one lambda per layer: {len(lams)} lambdas, {len(steps)} layers")
    if any(lam < 0 for lam in lams):
        raise ValueError(f"lambdas must be non-negative, got {list(lams)}")
    out, prod = [], 1.0
    for lam, mu in zip(lams, steps, strict=True):
        prod *= mu
        out.append(lam * prod)
    return out


def ml_objective(y, Ds: Sequence[torch.Tensor], gamma_L, lams: Sequence[float]) -> torch.Tensor:
    r"""Per-signal objective of (P): :math:`\tfrac12\|y - D_{(1,L)}\gamma_L\|^2 + \sum_{i<L}
    \lambda_i\|D_{(i+1,L)}\gamma_L\|_1 + \lambda_L\|\gamma_L\|_1`, shape ``(batch,)``."""
    g, total = gamma_L, lams[-1] * gamma_L.abs().sum(-1)
    for i in range(len(Ds) - 1, 0, -1):
        g = g @ Ds[i].T
        total = total + lams[i - 1] * g.abs().sum(-1)
    return total + 0.5 * (y - g @ Ds[0].T).pow(2).sum(-1)


def topk_thresholds(v: torch.Tensor, keep: torch.Tensor, nonneg: bool = False) -> torch.Tensor:
    """Per-row threshold that keeps the ``keep[b]`` largest entries of row ``b`` of ``v``.

    It is the ``(keep + 1)``-th largest magnitude (largest value if ``nonneg``), so that soft
    thresholding at it leaves exactly ``keep`` non-zeros (barring ties): the oracle bias of a
    forward pass that knows each layer's cardinality. Shape ``(batch, 1)``.
    """
    score = v.clamp_min(0) if nonneg else v.abs()
    ordered = score.sort(dim=-1, descending=True).values
    idx = keep.clamp(max=v.shape[-1] - 1).long()[:, None]
    return ordered.gather(-1, idx)


def layered_thresholding(
    y: torch.Tensor,
    layers: Sequence[Layer],
    thresholds: Sequence,
    steps: Sequence[float] | None = None,
    *,
    keep: Sequence[torch.Tensor] | None = None,
    nonneg: bool = False,
) -> list[torch.Tensor]:
    r"""Layered thresholding :math:`\hat\gamma_i = S_{\beta_i}(\mu_i D_i^\top\hat\gamma_{i-1})`.

    With ``nonneg=True`` :math:`S` is :math:`\mathrm{ReLU}(\cdot - \beta)`, the forward pass of a
    ReLU network with bias :math:`-\beta_i`.

    Args:
        y: ``(batch, ...)`` signals.
        layers: the :class:`Layer` of each dictionary.
        thresholds: one threshold per layer (float or broadcastable tensor); ignored for the
            layers where ``keep`` is given.
        steps: scalings :math:`\mu_i` (default 1).
        keep: optional per-layer ``(batch,)`` cardinalities: the threshold of that layer is then
            chosen per signal to keep that many entries (:func:`topk_thresholds`).
    Returns:
        ``[gamma_1, ..., gamma_L]``.
    """
    steps = steps or [1.0] * len(layers)
    out, v = [], y
    for i, layer in enumerate(layers):
        pre = steps[i] * layer.analysis(v)
        tau = thresholds[i] if keep is None else topk_thresholds(pre, keep[i], nonneg)
        v = soft_threshold(pre, tau, nonneg=nonneg)
        out.append(v)
    return out


def ml_ista_step(
    y: torch.Tensor,
    z: torch.Tensor,
    layers: Sequence[Layer],
    steps: Sequence,
    thresholds: Sequence,
    *,
    nonneg: bool = False,
) -> list[torch.Tensor]:
    r"""One nested proximal-gradient update of ML-ISTA taken at the deepest code ``z``.

    .. math::
        \hat\gamma_L = z,\ \hat\gamma_{i-1} = D_i\hat\gamma_i,\qquad
        \gamma_i^{+} = S_{\tau_i}\big(\hat\gamma_i - \mu_i D_i^\top(\hat\gamma_{i-1}
        - \gamma_{i-1}^{+})\big),\ \gamma_0^{+} = y .

    Returns ``[gamma_1^+, ..., gamma_L^+]`` (``gamma_L^+`` is the new iterate).
    """
    hats = [z]
    for layer in reversed(layers):
        hats.insert(0, layer.synthesis(hats[0]))  # hats[i] = gamma_hat_i, hats[0] = D_(1,L) z
    out, prev = [], y
    for i, layer in enumerate(layers):
        grad = layer.analysis(hats[i] - prev)
        prev = soft_threshold(hats[i + 1] - steps[i] * grad, thresholds[i], nonneg=nonneg)
        out.append(prev)
    return out


@dataclass
class PursuitResult:
    """Output of an iterative multi-layer pursuit.

    Attributes:
        gammas: final estimates ``[gamma_1, ..., gamma_L]`` (for ML-ISTA/FISTA
            :math:`\\gamma_{i-1} = D_i\\gamma_i` of the final deepest code).
        history: per-iteration ``(n_iter + 1, batch)`` tensors (row 0: the start):
            ``rel_error_<i>`` for each layer (if a reference was given) and ``objective``
            (of problem (P) at the deepest code).
    """

    gammas: list[torch.Tensor]
    history: dict[str, torch.Tensor] = field(default_factory=dict)


def _chain(Ds, gamma_L):
    """``[D_(2,L) g, ..., D_L g, g]``: the codes of every layer implied by the deepest one."""
    out = [gamma_L]
    for D in reversed(Ds[1:]):
        out.insert(0, out[0] @ D.T)
    return out


class _Recorder:
    def __init__(self, y, Ds, lams, reference):
        self.y, self.Ds, self.lams, self.reference = y, Ds, lams, reference
        self.history: dict[str, list[torch.Tensor]] = {}

    def __call__(self, gammas):
        self.history.setdefault("objective", []).append(
            ml_objective(self.y, self.Ds, gammas[-1], self.lams)
        )
        if self.reference is not None:
            for i, (g, ref) in enumerate(zip(gammas, self.reference, strict=True), start=1):
                self.history.setdefault(f"rel_error_{i}", []).append(relative_error(g, ref))

    def stacked(self):
        return {k: torch.stack(v) for k, v in self.history.items()}


def _ml_proximal_gradient(y, Ds, lams, n_iter, steps, reference, accelerated, callback):
    if len(lams) != len(Ds):
        raise ValueError(f"need one lambda per layer: {len(lams)} lambdas, {len(Ds)} layers")
    if n_iter < 0:
        raise ValueError(f"n_iter must be non-negative, got {n_iter}")
    steps = list(steps) if steps is not None else default_steps(Ds)
    taus = thresholds_from_lambdas(lams, steps)
    layers = [matrix_layer(D) for D in Ds]
    g = torch.zeros(y.shape[0], Ds[-1].shape[1], dtype=y.dtype, device=y.device)
    record = _Recorder(y, Ds, lams, reference)
    record(_chain(Ds, g))
    z, momentum = g, Momentum(accelerated)
    for k in range(1, n_iter + 1):
        g_new = ml_ista_step(y, z, layers, steps, taus)[-1]
        z = momentum(g_new, g)
        g = g_new
        record(_chain(Ds, g))
        if callback is not None:
            callback(k, g)
    return PursuitResult(gammas=_chain(Ds, g), history=record.stacked())


def ml_ista(
    y: torch.Tensor,
    Ds: Sequence[torch.Tensor],
    lams: Sequence[float],
    n_iter: int,
    *,
    steps: Sequence[float] | None = None,
    reference: Sequence[torch.Tensor] | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> PursuitResult:
    r"""ML-ISTA for problem (P) from :math:`\gamma_L = 0` (module docstring).

    Args:
        y: ``(batch, n_0)`` signals.
        Ds: dense dictionaries ``[D_1, ..., D_L]``.
        lams: :math:`\lambda_i` of (P), one per layer.
        n_iter: number of iterations.
        steps: :math:`\mu_i`; default :math:`1/\|D_i\|^2`.
        reference: true codes ``[gamma_1, ..., gamma_L]``: relative errors are recorded.
        callback: optional ``callback(k, gamma_L^k)`` after every iteration ``k`` (1-based).
    """
    return _ml_proximal_gradient(y, Ds, lams, n_iter, steps, reference, False, callback)


def ml_fista(
    y: torch.Tensor,
    Ds: Sequence[torch.Tensor],
    lams: Sequence[float],
    n_iter: int,
    *,
    steps: Sequence[float] | None = None,
    reference: Sequence[torch.Tensor] | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> PursuitResult:
    r"""ML-FISTA: ML-ISTA with FISTA momentum on the deepest code,
    :math:`z^{k+1} = \gamma_L^{k+1} + \tfrac{t_k - 1}{t_{k+1}}(\gamma_L^{k+1} - \gamma_L^k)`,
    :math:`t_{k+1} = (1 + \sqrt{1 + 4t_k^2})/2`. Arguments as :func:`ml_ista`."""
    return _ml_proximal_gradient(y, Ds, lams, n_iter, steps, reference, True, callback)


def layered_basis_pursuit(
    y: torch.Tensor,
    Ds: Sequence[torch.Tensor],
    lams: Sequence[float],
    n_iter: int,
    *,
    steps: Sequence[float] | None = None,
    reference: Sequence[torch.Tensor] | None = None,
) -> PursuitResult:
    r"""Layered basis pursuit by layer-wise ISTA run side by side.

    Iteration :math:`k`: :math:`\gamma_i^{k+1} = S_{\mu_i\lambda_i}(\gamma_i^k - \mu_i
    D_i^\top(D_i\gamma_i^k - \gamma_{i-1}^{k+1}))`, :math:`\gamma_0 = y`: ISTA on
    :math:`\tfrac12\|\gamma_{i-1} - D_i\gamma\|^2 + \lambda_i\|\gamma\|_1` whose target is
    the current estimate of the layer above. Each iteration costs one gradient per layer, as
    ML-ISTA does. The recorded objective is that of (P) at the deepest estimate.
    """
    if len(lams) != len(Ds):
        raise ValueError(f"need one lambda per layer: {len(lams)} lambdas, {len(Ds)} layers")
    steps = list(steps) if steps is not None else default_steps(Ds)
    gs = [torch.zeros(y.shape[0], D.shape[1], dtype=y.dtype, device=y.device) for D in Ds]
    record = _Recorder(y, Ds, lams, reference)
    record(gs)
    for _ in range(n_iter):
        prev = y
        for i, D in enumerate(Ds):
            grad = (gs[i] @ D.T - prev) @ D
            gs[i] = soft_threshold(gs[i] - steps[i] * grad, steps[i] * lams[i])
            prev = gs[i]
        record(gs)
    return PursuitResult(gammas=gs, history=record.stacked())
