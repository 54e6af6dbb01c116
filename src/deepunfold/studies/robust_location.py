r"""Task 1: robustness of the L2, L1 and L0 location estimators.

Given observations :math:`x_1, \dots, x_N` of an unknown scalar :math:`z`, each estimator
minimises a loss over :math:`z`:

.. math::
    L_2(z) = \sum_i (x_i - z)^2, \qquad
    L_1(z) = \sum_i |x_i - z|, \qquad
    L_0(z) = \sum_i \mathbb 1\big[|x_i - z| > \varepsilon\big].

Their closed-form minimisers are the mean, the median and (for :math:`\varepsilon = 0`) the
mode. With :math:`\varepsilon > 0` the L0 minimiser is the centre of the densest window of
width :math:`2\varepsilon` (a "window mode"), which is what makes the L0 estimator usable on
noisy, continuous data.

:func:`minimise_loss` finds each minimiser numerically (bisection on the derivative for the
convex losses, a candidate search for the piecewise-constant one) so that the closed forms
can be checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "LOSSES",
    "loss",
    "closed_form",
    "minimise_loss",
    "Estimates",
    "estimate_all",
    "breakdown_sweep",
]

LOSSES = ("l2", "l1", "l0")


def loss(kind: str, x: np.ndarray, z: np.ndarray | float, eps: float = 0.0) -> np.ndarray:
    """Evaluate the ``kind`` loss (``"l2"``, ``"l1"`` or ``"l0"``) at each candidate ``z``.

    Args:
        kind: which loss.
        x: ``(N,)`` observations.
        z: scalar or ``(K,)`` candidates.
        eps: tolerance of the L0 indicator (0: exact equality).

    Returns:
        ``(K,)`` loss values (0-d for a scalar ``z``).
    """
    x = np.asarray(x, dtype=float)
    z = np.asarray(z, dtype=float)
    r = x[None, :] - np.atleast_1d(z)[:, None]
    if kind == "l2":
        out = (r**2).sum(-1)
    elif kind == "l1":
        out = np.abs(r).sum(-1)
    elif kind == "l0":
        out = (np.abs(r) > eps).sum(-1).astype(float)
    else:
        raise ValueError(f"unknown loss {kind!r}; expected one of {LOSSES}")
    return out.reshape(z.shape)


def _window_mode(x: np.ndarray, eps: float) -> float:
    """Centre of the interval of z where the most observations lie within ``eps``."""
    xs = np.sort(x)
    # The count of points within eps of z is maximal on an interval [x_j - eps, x_i + eps]
    # spanned by a run x_i..x_j with x_j - x_i <= 2 eps; take the longest run (ties: first).
    best_count, best_centre = 0, float(xs[0])
    j = 0
    for i in range(len(xs)):
        while j + 1 < len(xs) and xs[j + 1] - xs[i] <= 2 * eps:
            j += 1
        count = j - i + 1
        if count > best_count:
            best_count, best_centre = count, 0.5 * (xs[i] + xs[j])
    return best_centre


def closed_form(kind: str, x: Sequence[float], eps: float = 0.0) -> float:
    """Closed-form minimiser: mean (L2), median (L1), mode / window mode (L0).

    For an even number of observations every point between the two middle values minimises
    L1; ``np.median`` returns their midpoint. Ties between modes go to the smallest value.
    """
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        raise ValueError("need at least one observation")
    if kind == "l2":
        return float(x.mean())
    if kind == "l1":
        return float(np.median(x))
    if kind == "l0":
        if eps == 0:
            values, counts = np.unique(x, return_counts=True)
            return float(values[np.argmax(counts)])
        return _window_mode(x, eps)
    raise ValueError(f"unknown loss {kind!r}; expected one of {LOSSES}")


def _right_derivative(kind: str, x: np.ndarray, z: float) -> float:
    """Right derivative of the convex L2 / L1 losses at ``z``, from their definitions."""
    if kind == "l2":
        return float(2.0 * (z - x).sum())
    return float((x <= z).sum() - (x > z).sum())  # d/dz sum|x_i - z| from the right


def minimise_loss(kind: str, x: Sequence[float], eps: float = 0.0, n_bisect: int = 200):
    """Numerical minimiser of the ``kind`` loss, found without using the closed form.

    * L2 and L1 are convex, so their right derivative is non-decreasing in ``z``; bisection
      on ``[min x, max x]`` finds the smallest ``z`` where it is non-negative, which is a
      minimiser (for L1 the left end of the minimising interval). Bisection on the sign of
      the derivative reaches machine precision, unlike a search on loss values.
    * L0 is piecewise constant and can only drop within ``eps`` of an observation, so the
      candidates are the observations and the edges ``x_i +- eps`` of their windows; the
      midpoint of the leftmost minimising interval is returned.

    Returns:
        ``(z_hat, loss_at_z_hat)``.
    """
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        raise ValueError("need at least one observation")
    if kind in ("l2", "l1"):
        lo, hi = float(x.min()), float(x.max())
        for _ in range(n_bisect):
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            if _right_derivative(kind, x, mid) >= 0:
                hi = mid
            else:
                lo = mid
        return hi, float(loss(kind, x, hi))
    if kind == "l0":
        cand = np.unique(np.concatenate([x, x - eps, x + eps]))
        vals = loss("l0", x, cand, eps)
        best = vals.min()
        arg = np.sort(cand[vals == best])
        # take the leftmost minimising interval (the closed form breaks ties the same way):
        # extend while the midpoint to the next minimising candidate still minimises
        k = 0
        while k + 1 < len(arg) and loss("l0", x, 0.5 * (arg[k] + arg[k + 1]), eps) == best:
            k += 1
        z = 0.5 * float(arg[0] + arg[k])
        return z, float(best)
    raise ValueError(f"unknown loss {kind!r}; expected one of {LOSSES}")


@dataclass(frozen=True)
class Estimates:
    """Numerical and closed-form estimates of one loss on one data set."""

    loss: str
    numerical: float
    closed_form: float
    loss_at_numerical: float
    loss_at_closed_form: float

    @property
    def agree(self) -> bool:
        """Both minimise the loss (equal loss values; the L1 minimiser need not be unique)."""
        scale = max(1.0, abs(self.loss_at_closed_form))
        return abs(self.loss_at_numerical - self.loss_at_closed_form) <= 1e-9 * scale


def estimate_all(x: Sequence[float], eps: float = 0.0) -> list[Estimates]:
    """Estimates of all three losses on ``x``, numerical and closed form side by side."""
    out = []
    for kind in LOSSES:
        z_num, f_num = minimise_loss(kind, x, eps)
        z_cf = closed_form(kind, x, eps)
        out.append(Estimates(kind, z_num, z_cf, f_num, float(loss(kind, x, z_cf, eps))))
    return out


def breakdown_sweep(
    *,
    true_value: float,
    n_obs: int,
    noise_std: float,
    eps: float,
    magnitudes: Sequence[float],
    n_outliers_fixed: int,
    magnitude_fixed: float,
    n_trials: int,
    seed: int,
):
    """Estimation error of the three estimators as outliers grow in size and in number.

    Each trial draws ``n_obs`` inliers ``true_value + N(0, noise_std^2)``; outliers replace
    the first ``k`` of them by ``true_value + magnitude + N(0, noise_std^2)`` (a cluster, the
    hardest case for the L0 window mode). Two sweeps share the same inlier draws:

    * magnitude sweep: ``k = n_outliers_fixed``, magnitude over ``magnitudes``;
    * count sweep: ``magnitude = magnitude_fixed``, ``k = 0 .. n_obs``.

    Returns:
        Two ``pandas.DataFrame`` (magnitude sweep, count sweep) in long format with columns
        ``estimator``, the swept variable, ``mean_abs_error``, ``std_abs_error``.
    """
    import pandas as pd

    if not 0 <= n_outliers_fixed <= n_obs:
        raise ValueError(f"n_outliers_fixed must lie in [0, {n_obs}], got {n_outliers_fixed}")
    rng = np.random.default_rng(seed)
    inliers = true_value + noise_std * rng.standard_normal((n_trials, n_obs))
    jitter = noise_std * rng.standard_normal((n_trials, n_obs))

    def errors(k: int, magnitude: float) -> dict[str, np.ndarray]:
        errs = {kind: np.empty(n_trials) for kind in LOSSES}
        for t in range(n_trials):
            x = inliers[t].copy()
            x[:k] = true_value + magnitude + jitter[t, :k]
            for kind in LOSSES:
                errs[kind][t] = abs(closed_form(kind, x, eps) - true_value)
        return errs

    def rows(var: str, values, make):
        out = []
        for v in values:
            for kind, e in make(v).items():
                out.append(
                    {
                        "estimator": kind,
                        var: v,
                        "mean_abs_error": float(e.mean()),
                        "std_abs_error": float(e.std()),
                    }
                )
        return pd.DataFrame(out)

    by_magnitude = rows("magnitude", list(magnitudes), lambda m: errors(n_outliers_fixed, m))
    by_count = rows("n_outliers", range(n_obs + 1), lambda k: errors(k, magnitude_fixed))
    return by_magnitude, by_count
