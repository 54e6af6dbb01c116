"""Figures of task 3: the ISTA study and ISTA / FISTA against LISTA, LISTA-CP and ALISTA."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from deepunfold.figures.plotting import new_figure

SOLVER_LABELS = {"ista": "ISTA", "fista": "FISTA"}
MODEL_LABELS = {"lista": "LISTA", "lista_cp": "LISTA-CP", "alista": "ALISTA"}
COLORS = {
    "ista": "0.45",
    "fista": "k",
    "lista": "tab:blue",
    "lista_cp": "tab:orange",
    "alista": "tab:green",
}
TERM_LABELS = {
    "objective": r"total loss $\frac{1}{2}\|x - Az\|^2 + \lambda\|z\|_1$",
    "reconstruction": r"reconstruction loss $\frac{1}{2}\|x - Az\|^2$",
    "l1": r"sparse loss $\lambda\|z\|_1$",
}


def _label(name: str) -> str:
    return MODEL_LABELS.get(name, SOLVER_LABELS.get(name, name))


def plot_ista_losses(curves: dict, levels, lam: float, n_signals: int):
    """Rows: total / reconstruction / sparse loss; columns: ISTA, FISTA; a line per sparsity."""
    fig, axes = new_figure(3, 2, width=5.2, height=3.0, sharex=True)
    cmap = _level_colors(levels)
    for col, solver in enumerate(("ista", "fista")):
        for row, term in enumerate(("objective", "reconstruction", "l1")):
            ax = axes[row, col]
            values = np.asarray(curves[f"{solver}_{term}"])
            its = np.arange(values.shape[1])
            for li, level in enumerate(levels):
                # iteration 0 (z = 0) cannot be drawn on a log axis: start at 1
                ax.plot(its[1:], values[li, 1:], color=cmap[li], lw=1.3, label=f"s = {level:g}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_ylabel(TERM_LABELS[term], fontsize=8)
            if row == 0:
                ax.set_title(f"{SOLVER_LABELS[solver]}")
            if row == 2:
                ax.set_xlabel("iteration")
    # the reconstruction panels are empty in their upper right corner: room for the legend
    axes[1, 1].legend(
        title="sparsity (fraction of zeros)", fontsize=7, title_fontsize=7, loc="upper right"
    )
    fig.suptitle(
        f"Loss terms per iteration (mean over {n_signals} signals per sparsity level), "
        f"$\\lambda$ = {lam:g}"
    )
    return fig


def plot_recovery(z_true, z_ista, z_fista, level: float, n_iter: int, nmse: dict):
    """2x1 grid: the original code above, the codes ISTA and FISTA recovered below."""
    fig, axes = new_figure(2, 1, width=8.0, height=2.8, sharex=True)
    idx = np.arange(len(z_true))
    axes[0].stem(idx, z_true, linefmt="tab:blue", markerfmt="o", basefmt="0.7")
    axes[0].set_title(
        f"original code z (n = {len(z_true)}, {int(np.count_nonzero(z_true))} non-zeros, "
        f"sparsity level {level:g})"
    )
    axes[0].set_ylabel("value")
    axes[1].stem(idx, z_ista, linefmt="tab:red", markerfmt="o", basefmt="0.7", label="ISTA")
    axes[1].plot(idx, z_fista, "kx", ms=5, label="FISTA")
    axes[1].set_title(
        f"recovered after {n_iter} iterations: ISTA NMSE {nmse['ista']:.1f} dB, "
        f"FISTA NMSE {nmse['fista']:.1f} dB"
    )
    axes[1].set_xlabel("entry index")
    axes[1].set_ylabel("value")
    axes[1].legend(loc="upper right")
    for ax in axes:
        ax.set_ylim(*_common_ylim(z_true, z_ista, z_fista))
    return fig


def plot_convergence(summary: pd.DataFrame, max_iter: int, conv_tol: float):
    """Iterations to converge and final NMSE against sparsity, ISTA beside FISTA."""
    fig, axes = new_figure(1, 2, width=5.0, height=3.8)
    for solver, rows in summary.groupby("solver", sort=False):
        rows = rows.sort_values("sparsity")
        c = COLORS[solver]
        mk = "s--" if solver == "ista" else "o-"
        axes[0].plot(rows.sparsity, rows.iterations_median, mk, color=c, label=_label(solver))
        axes[0].fill_between(
            rows.sparsity, rows.iterations_q25, rows.iterations_q75, color=c, alpha=0.15
        )
        axes[1].plot(
            rows.sparsity,
            rows.nmse_db,
            mk,
            color=c,
            ms=8 if solver == "ista" else 5,
            label=_label(solver),
        )
    axes[0].set_yscale("log")
    axes[0].set_xlabel("sparsity level (fraction of zeros in z)")
    axes[0].set_ylabel("iterations to converge (median, IQR band)")
    axes[0].set_title(f"relative objective gap <= {conv_tol:g}")
    axes[0].legend()
    axes[1].set_xlabel("sparsity level (fraction of zeros in z)")
    axes[1].set_ylabel("test NMSE (dB)")
    axes[1].set_title(f"recovery error after {max_iter} iterations")
    axes[1].legend()
    fig.suptitle("ISTA and FISTA against the sparsity of the code")
    return fig


def plot_training(histories: dict[str, pd.DataFrame], setting: str):
    """Training and validation NMSE (dB) against steps, one panel per model."""
    names = list(histories)
    fig, axes = new_figure(1, len(names), width=4.6, height=3.6, squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        h = histories[name]
        ax.plot(
            h.step,
            h.train_nmse_db,
            color=COLORS.get(name, "C0"),
            alpha=0.5,
            lw=1,
            label="training batches",
        )
        ax.plot(h.step, h.val_nmse_db, color=COLORS.get(name, "C0"), lw=1.6, label="validation")
        starts = h.groupby("layer").step.min()
        for layer, s in starts.items():
            if layer > 1:
                ax.axvline(s, color="0.8", lw=0.6, zorder=0)
        ax.set_xlabel("training step (vertical lines: a new layer starts)")
        ax.set_ylabel("NMSE (dB)")
        ax.set_title(f"{_label(name)}, {int(h.layer.max())} layers")
        ax.legend(fontsize=8)
    fig.suptitle(f"Layer-wise training, setting '{setting}'")
    return fig


def plot_layers(
    layers: dict[str, pd.DataFrame], baselines: pd.DataFrame, setting: str, true_zeros: float
):
    """Test NMSE (dB) and fraction of zeros per layer; ISTA / FISTA at as many iterations."""
    fig, axes = new_figure(1, 2, width=5.2, height=3.9)
    depth = max(int(t.layer.max()) for t in layers.values()) if layers else 16
    base = baselines[baselines.iteration <= depth]
    for solver, rows in base.groupby("solver", sort=False):
        axes[0].plot(
            rows.iteration, rows.nmse_db, "s--", ms=3, color=COLORS[solver], label=_label(solver)
        )
        axes[1].plot(
            rows.iteration,
            rows.fraction_zeros,
            "s--",
            ms=3,
            color=COLORS[solver],
            label=_label(solver),
        )
    for name, t in layers.items():
        c = COLORS.get(name, "C0")
        axes[0].plot(t.layer, t.test_nmse_db, "o-", color=c, label=f"{_label(name)} (depth t)")
        axes[0].plot(
            t.layer,
            t.final_test_nmse_db,
            ":",
            color=c,
            lw=1,
            label=f"{_label(name)}: layer t of the deepest",
        )
        axes[1].plot(t.layer, t.test_fraction_zeros, "o-", color=c, label=_label(name))
    axes[1].axhline(true_zeros, color="tab:purple", ls=":", label="true codes")
    axes[0].set_xlabel("layers / iterations")
    axes[0].set_ylabel("test NMSE (dB)")
    axes[0].set_title("reconstruction error")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("layers / iterations")
    axes[1].set_ylabel("fraction of zeros in the prediction")
    axes[1].set_title("sparsity of the prediction")
    axes[1].set_ylim(0, 1.02)
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"Test set of setting '{setting}': per layer of the learned networks")
    return fig


def plot_nmse_iterations(
    layers: dict[str, pd.DataFrame], baselines: pd.DataFrame, setting: str, lam: float
):
    """NMSE against iterations (ISTA, FISTA) and layers (learned networks), log x axis."""
    fig, ax = new_figure(width=7.0, height=4.4)
    for solver, rows in baselines.groupby("solver", sort=False):
        ax.plot(
            rows.iteration,
            rows.nmse_db,
            color=COLORS[solver],
            lw=1.5,
            label=f"{_label(solver)} ($\\lambda$ = {lam:g})",
        )
    for name, t in layers.items():
        ax.plot(
            t.layer, t.test_nmse_db, "o-", ms=4, color=COLORS.get(name, "C0"), label=_label(name)
        )
    ax.set_xscale("log")
    ax.set_xlabel("iterations (ISTA, FISTA) / layers (learned networks)")
    ax.set_ylabel("test NMSE (dB)")
    ax.set_title(f"Setting '{setting}': classical iterations against learned layers")
    ax.legend(fontsize=8)
    return fig


def _level_colors(levels):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(v) for v in np.linspace(0.0, 0.9, len(levels))]


def _common_ylim(*arrays):
    lo = min(float(np.min(a)) for a in arrays)
    hi = max(float(np.max(a)) for a in arrays)
    pad = 0.08 * (hi - lo or 1.0)
    return lo - pad, hi + pad
