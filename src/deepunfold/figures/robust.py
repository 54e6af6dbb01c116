"""Figures of task 1 (robust location estimators)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepunfold.figures.plotting import new_figure
from deepunfold.studies.robust_location import LOSSES, loss

LABELS = {"l2": "L2 (mean)", "l1": "L1 (median)", "l0": "L0 (mode)"}
COLORS = {"l2": "tab:red", "l1": "tab:blue", "l0": "tab:green"}


def plot_estimates(x, estimates: pd.DataFrame, true_value: float):
    """Observations with the three estimates (numerical minimisers) and the true value."""
    fig, ax = new_figure(width=6.5, height=3.8)
    idx = np.arange(1, len(x) + 1)
    ax.stem(idx, x, linefmt="0.6", markerfmt="ko", basefmt=" ", label="observations $x_i$")
    ax.axhline(true_value, color="k", ls=":", lw=1.2, label=f"true value = {true_value:g}")
    for _, row in estimates.iterrows():
        k = row["loss"]
        ax.axhline(
            row["numerical"],
            color=COLORS[k],
            lw=1.8,
            ls="--" if k == "l0" else "-",
            label=f"{LABELS[k]}: $\\hat z$ = {row['numerical']:.4g}",
        )
    ax.set_xlabel("observation index $i$")
    ax.set_ylabel("value")
    ax.set_xticks(idx)
    shown = ", ".join(f"{v:g}" for v in x[:12]) + (", ..." if len(x) > 12 else "")
    ax.set_title(f"Location estimates from x = [{shown}]")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def plot_loss_curves(x, estimates: pd.DataFrame, grid: np.ndarray, eps: float):
    """The three losses over z, each with its numerical minimiser marked."""
    fig, axes = new_figure(1, 3, width=4.0, height=3.5)
    est = estimates.set_index("loss")
    for ax, k in zip(axes, LOSSES, strict=True):
        ax.plot(grid, loss(k, x, grid, eps), color=COLORS[k], lw=1.5, label=f"{k.upper()} loss")
        if k == "l0":
            # the counting loss only dips at (or within eps of) observations: mark them exactly
            pts = np.unique(np.asarray(x, dtype=float))
            ax.plot(pts, loss(k, x, pts, eps), "o", color=COLORS[k], ms=5, label="at observations")
        zhat = est.loc[k, "numerical"]
        ax.plot([zhat], [est.loc[k, "loss_at_numerical"]], "k*", ms=12, label=f"min at {zhat:.4g}")
        ax.axvline(zhat, color="k", ls=":", lw=1)
        ax.set_xlabel("z")
        ax.set_ylabel(f"{k.upper()} loss")
        title = {"l2": r"$\Sigma_i\,(x_i - z)^2$", "l1": r"$\Sigma_i\,|x_i - z|$"}.get(
            k, r"$\Sigma_i\,1[|x_i - z| > \varepsilon]$" + f", $\\varepsilon$={eps:g}"
        )
        ax.set_title(title, pad=14)
        ax.legend(fontsize=8)
    fig.suptitle("Loss curves of the three estimators with their minimisers")
    return fig


def plot_breakdown(
    by_magnitude: pd.DataFrame, by_count: pd.DataFrame, n_outliers_fixed: int, magnitude_fixed
):
    """Mean absolute error against outlier magnitude and against the number of outliers."""
    fig, (a1, a2) = new_figure(1, 2, width=5.0, height=3.8)
    n_obs = int(by_count["n_outliers"].max())
    for k in LOSSES:
        m = by_magnitude[by_magnitude.estimator == k]
        a1.plot(m["magnitude"], m["mean_abs_error"], "o-", ms=3, color=COLORS[k], label=LABELS[k])
        c = by_count[by_count.estimator == k]
        a2.plot(
            c["n_outliers"] / n_obs,
            c["mean_abs_error"],
            "o-",
            ms=3,
            color=COLORS[k],
            label=LABELS[k],
        )
    a1.set_xscale("symlog", linthresh=1.0)
    a1.set_yscale("symlog", linthresh=0.01)
    a1.set_xlabel("outlier magnitude (offset from the true value, symlog)")
    a1.set_ylabel("mean |estimate - true value| (symlog)")
    a1.set_title(f"{n_outliers_fixed} of {n_obs} observations are outliers")
    a1.legend(fontsize=8)
    a2.axvline(0.5, color="k", ls=":", lw=1, label="50 % (breakdown point of the median)")
    a2.set_xlabel("fraction of outliers")
    a2.set_ylabel("mean |estimate - true value|")
    a2.set_title(f"outliers at offset {magnitude_fixed:g}")
    a2.legend(fontsize=8, loc="center right")
    fig.suptitle("Breakdown of the L2 / L1 / L0 estimators")
    return fig
