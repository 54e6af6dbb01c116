r"""Proximal-gradient solvers for the Lasso on batches of signals.

All solvers minimise, independently for each row :math:`x_b` of a batch,

.. math::
    F(z_b) = \tfrac12 \|x_b - A z_b\|_2^2 + \lambda \|z_b\|_1
    \qquad (\text{optionally subject to } z_b \ge 0),

with the conventions

* ``x``: ``(batch, m)`` signals (a single ``(m,)`` signal is promoted to a batch of one);
* ``A``: ``(m, n)`` dictionary / sensing matrix, so that ``A @ z_b`` reconstructs ``x_b``;
* ``z``: ``(batch, n)`` codes.

In batched form the reconstruction is ``z @ A.T`` and the gradient of the smooth part is
``(z @ A.T - x) @ A = z @ G - x @ A`` with the Gram matrix ``G = A.T @ A`` computed once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from deepunfold.ops.prox import soft_threshold

__all__ = [
    "LassoResult",
    "Momentum",
    "power_iteration",
    "lipschitz_constant",
    "lasso_objective",
    "ista",
    "fista",
]


@dataclass
class LassoResult:
    """Output of :func:`ista` / :func:`fista`.

    Attributes:
        z: ``(batch, n)`` final codes.
        n_iter: number of iterations run.
        converged: ``(batch,)`` bool, whether each signal met the tolerance.
        rel_change: ``(batch,)`` last relative change ``||z_k - z_{k-1}|| / max(||z_k||, 1e-12)``.
        step: the step size used.
        history: per-iteration records, each a ``(n_iter + 1, batch)`` tensor (index 0 is the
            starting point): ``objective``, ``reconstruction`` (``1/2||x - Az||^2``),
            ``l1`` (``lambda ||z||_1``) and ``nnz`` (non-zeros). Empty if not recorded.
    """

    z: torch.Tensor
    n_iter: int
    converged: torch.Tensor
    rel_change: torch.Tensor
    step: float
    history: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def objective(self) -> torch.Tensor:
        """Final objective per signal (only if the history was recorded)."""
        return self.history["objective"][-1]


def power_iteration(
    A,
    n_iter: int = 1000,
    tol: float = 1e-10,
    seed: int = 0,
    *,
    adjoint: Callable[[torch.Tensor], torch.Tensor] | None = None,
    v0: torch.Tensor | None = None,
    return_vector: bool = False,
):
    r"""Largest singular value :math:`\|A\|_2` by power iteration on :math:`A^\top A`.

    Args:
        A: ``(m, n)`` matrix, or a linear operator given as a callable ``v -> A v`` on
            tensors (a convolution, say) together with its ``adjoint``.
        n_iter: iteration budget.
        tol: stop when the relative change of the estimate falls below ``tol``.
        seed: seed of the random start vector (a fixed generator: no global state is touched).
        adjoint: ``u -> A^T u``; required with (and only with) an operator ``A``.
        v0: start vector instead of the random one. Required for an operator (its shape,
            dtype and device are those of the operator's input); the vector returned by an
            earlier call warm-starts the estimate of a slowly changing operator.
        return_vector: also return the last normalised iterate.
    Returns:
        :math:`\sigma_{\max}(A)`, or ``(sigma, v)`` with ``return_vector``.
    """
    if callable(A) and not isinstance(A, torch.Tensor):
        if adjoint is None or v0 is None:
            raise ValueError("power_iteration of an operator needs its adjoint and a start v0")
        forward = A
    else:
        if adjoint is not None:
            raise ValueError("adjoint is only for operators; a matrix is its own")
        if A.ndim != 2:
            raise ValueError(f"power_iteration expects a 2-D matrix, got shape {tuple(A.shape)}")
        forward, adjoint = (lambda v: A @ v), (lambda u: A.T @ u)
    if v0 is None:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        v = torch.randn(A.shape[1], generator=gen, dtype=torch.float64).to(A.device, A.dtype)
    else:
        v = v0
    v = v / torch.linalg.vector_norm(v)
    sigma = 0.0
    for _ in range(n_iter):
        w = adjoint(forward(v))
        norm = float(torch.linalg.vector_norm(w))
        if norm == 0.0:
            return (0.0, v) if return_vector else 0.0
        v = w / norm
        new_sigma = math.sqrt(norm)
        if abs(new_sigma - sigma) <= tol * new_sigma:
            sigma = new_sigma
            break
        sigma = new_sigma
    return (sigma, v) if return_vector else sigma


def lipschitz_constant(A: torch.Tensor, **kwargs) -> float:
    r"""Lipschitz constant :math:`L = \|A\|_2^2` of :math:`\nabla_z \tfrac12\|x - Az\|^2`."""
    return power_iteration(A, **kwargs) ** 2


def lasso_objective(
    x: torch.Tensor, A: torch.Tensor, z: torch.Tensor, lam: float
) -> dict[str, torch.Tensor]:
    r"""Per-signal terms of :math:`\tfrac12\|x - Az\|^2 + \lambda\|z\|_1`.

    Returns a dict with ``objective``, ``reconstruction``, ``l1`` and ``nnz``, each ``(batch,)``.
    """
    x, z = _as_batch(x), _as_batch(z)
    rec = 0.5 * (x - z @ A.T).pow(2).sum(-1)
    l1 = lam * z.abs().sum(-1)
    return {
        "objective": rec + l1,
        "reconstruction": rec,
        "l1": l1,
        "nnz": (z != 0).sum(-1).to(x.dtype),
    }


def _as_batch(t: torch.Tensor) -> torch.Tensor:
    return t.unsqueeze(0) if t.ndim == 1 else t


def _check(x: torch.Tensor, A: torch.Tensor, lam: float) -> None:
    if A.ndim != 2:
        raise ValueError(f"A must be 2-D (m, n), got shape {tuple(A.shape)}")
    if x.shape[-1] != A.shape[0]:
        raise ValueError(f"signals have dimension {x.shape[-1]} but A has {A.shape[0]} rows")
    if lam < 0:
        raise ValueError(f"lambda must be non-negative, got {lam}")


class Momentum:
    r"""FISTA's extrapolation, shared by every accelerated solver of the package.

    Called with the new and the previous iterate, returns the point the next gradient step
    starts from: :math:`y^{k+1} = z^{k+1} + \tfrac{t_k - 1}{t_{k+1}}(z^{k+1} - z^k)` with
    :math:`t_{k+1} = \tfrac12(1 + \sqrt{1 + 4t_k^2})`, :math:`t_1 = 1`; with
    ``accelerated=False`` (ISTA) it returns the new iterate unchanged.
    """

    def __init__(self, accelerated: bool = True):
        self.accelerated = accelerated
        self.t = 1.0

    def __call__(self, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
        if not self.accelerated:
            return new
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * self.t * self.t))
        y = new + ((self.t - 1.0) / t_new) * (new - old)
        self.t = t_new
        return y


def _proximal_gradient(
    x: torch.Tensor,
    A: torch.Tensor,
    lam: float,
    *,
    accelerated: bool,
    step: float | None,
    max_iter: int,
    tol: float,
    z0: torch.Tensor | None,
    nonneg: bool,
    record_history: bool,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> LassoResult:
    x = _as_batch(x)
    _check(x, A, lam)
    if max_iter < 0:
        raise ValueError(f"max_iter must be non-negative, got {max_iter}")
    if step is None:
        L = lipschitz_constant(A)
        step = 1.0 / L if L > 0 else 1.0
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")

    G = A.T @ A
    xA = x @ A
    z = torch.zeros(x.shape[0], A.shape[1], dtype=x.dtype, device=x.device)
    if z0 is not None:
        z = _as_batch(z0).to(x.dtype).clone()
    y, momentum = z, Momentum(accelerated)
    history: dict[str, list[torch.Tensor]] = {}

    def record(z_now: torch.Tensor) -> None:
        for key, val in lasso_objective(x, A, z_now, lam).items():
            history.setdefault(key, []).append(val)

    if record_history:
        record(z)
    converged = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    rel = torch.full((x.shape[0],), math.inf, dtype=x.dtype, device=x.device)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is returned
        z_new = soft_threshold(y - step * (y @ G - xA), step * lam, nonneg=nonneg)
        diff = torch.linalg.vector_norm(z_new - z, dim=-1)
        rel = diff / torch.linalg.vector_norm(z_new, dim=-1).clamp_min(1e-12)
        y = momentum(z_new, z)
        z = z_new
        if record_history:
            record(z)
        if callback is not None:
            callback(n_iter, z)
        converged = rel <= tol
        if bool(converged.all()):
            break
    return LassoResult(
        z=z,
        n_iter=n_iter,
        converged=converged,
        rel_change=rel,
        step=float(step),
        history={k: torch.stack(v) for k, v in history.items()},
    )


def ista(
    x: torch.Tensor,
    A: torch.Tensor,
    lam: float,
    *,
    step: float | None = None,
    max_iter: int = 1000,
    tol: float = 1e-6,
    z0: torch.Tensor | None = None,
    nonneg: bool = False,
    record_history: bool = True,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> LassoResult:
    r"""ISTA (proximal gradient) for the Lasso on a batch of signals.

    .. math::
        z^{k+1} = S_{\eta\lambda}\big(z^k - \eta A^\top(A z^k - x)\big),

    with :math:`S` the soft threshold (:func:`~deepunfold.ops.prox.soft_threshold`) and step
    :math:`\eta = 1/L`, :math:`L = \|A\|_2^2` from :func:`power_iteration`, unless ``step`` is
    given. Stops after ``max_iter`` iterations or once every signal's relative change
    :math:`\|z^{k+1} - z^k\| / \|z^{k+1}\|` is at most ``tol``.

    Args:
        x: ``(batch, m)`` or ``(m,)`` signals.
        A: ``(m, n)`` dictionary.
        lam: regularisation weight :math:`\lambda \ge 0`.
        step: fixed step size; default ``1/L``.
        max_iter: iteration budget.
        tol: relative-change tolerance (0 runs the whole budget).
        z0: optional warm start, ``(batch, n)``.
        nonneg: constrain codes to be non-negative.
        record_history: keep per-iteration objective, reconstruction, l1 term and non-zeros.
        callback: optional ``callback(k, z_k)`` called after every iteration ``k`` (1-based)
            with the current iterate, e.g. to score each iterate against a ground truth.
    """
    return _proximal_gradient(
        x,
        A,
        lam,
        accelerated=False,
        step=step,
        max_iter=max_iter,
        tol=tol,
        z0=z0,
        nonneg=nonneg,
        record_history=record_history,
        callback=callback,
    )


def fista(
    x: torch.Tensor,
    A: torch.Tensor,
    lam: float,
    *,
    step: float | None = None,
    max_iter: int = 1000,
    tol: float = 1e-6,
    z0: torch.Tensor | None = None,
    nonneg: bool = False,
    record_history: bool = True,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> LassoResult:
    r"""FISTA (Beck & Teboulle, 2009): ISTA with Nesterov momentum.

    .. math::
        z^{k+1} &= S_{\eta\lambda}\big(y^k - \eta A^\top(A y^k - x)\big), \\
        t_{k+1} &= \tfrac12\big(1 + \sqrt{1 + 4 t_k^2}\big), \\
        y^{k+1} &= z^{k+1} + \tfrac{t_k - 1}{t_{k+1}}\,(z^{k+1} - z^k),

    with :math:`t_1 = 1`, :math:`y^0 = z^0`. The objective converges as :math:`O(1/k^2)`
    against ISTA's :math:`O(1/k)`. Arguments as for :func:`ista`; the history records the
    iterates :math:`z^k`, not the extrapolated points.
    """
    return _proximal_gradient(
        x,
        A,
        lam,
        accelerated=True,
        step=step,
        max_iter=max_iter,
        tol=tol,
        z0=z0,
        nonneg=nonneg,
        record_history=record_history,
        callback=callback,
    )
