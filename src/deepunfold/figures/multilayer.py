"""Figures of task 6 (mutual coherence, multi-layer pursuits, the unfolded ML-ISTA network)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepunfold.figures.plotting import new_figure

DICT_LABELS = {
    "gaussian": "random Gaussian",
    "identity_dct": "identity + DCT-II",
    "identity_hadamard": "identity + Hadamard",
}
METHOD_STYLE = {
    "BP (FISTA)": dict(color="tab:blue", marker="o"),
    "OMP": dict(color="tab:orange", marker="s"),
    "layered thresholding": dict(color="tab:gray", ls="--"),
    "layered BP": dict(color="tab:green"),
    "ML-ISTA": dict(color="tab:blue"),
    "ML-FISTA": dict(color="tab:red"),
}


def plot_recovery(recovery: pd.DataFrame, dictionaries: pd.DataFrame):
    """Exact-support recovery rate against sparsity, one panel per dictionary, bound marked.

    Args:
        recovery: columns ``dictionary``, ``sparsity``, ``method``, ``recovery_rate``.
        dictionaries: columns ``dictionary``, ``n``, ``m``, ``coherence``, ``bound``.
    """
    n_panels = len(dictionaries)
    fig, axes = new_figure(1, n_panels, width=4.2, height=3.6, squeeze=False)
    for ax, (_, d) in zip(axes[0], dictionaries.iterrows(), strict=True):
        sub = recovery[recovery.dictionary == d["dictionary"]]
        for method, rows in sub.groupby("method", sort=False):
            ax.plot(
                rows["sparsity"],
                100 * rows["recovery_rate"],
                ms=3,
                label=method,
                **METHOD_STYLE[method],
            )
        ax.axvline(
            d["bound"],
            color="k",
            ls=":",
            lw=1.2,
            label=f"bound (1 + 1/$\\mu$)/2 = {d['bound']:.2f}",
        )
        ax.axvspan(0, d["bound"], color="tab:green", alpha=0.08)
        ax.set_xlim(0, sub["sparsity"].max() + 0.5)
        ax.set_ylim(-3, 103)
        ax.set_xlabel("sparsity $\\|x\\|_0$ (non-zeros)")
        ax.set_ylabel("exact support recovery (% of trials)")
        ax.set_title(
            f"{DICT_LABELS.get(d['dictionary'], d['dictionary'])}, "
            f"{int(d['n'])}x{int(d['m'])}\n$\\mu(D)$ = {d['coherence']:.4f}",
            fontsize=10,
        )
        ax.legend(fontsize=7, loc="lower left")
    n_trials = int(recovery["n_trials"].iloc[0])
    fig.suptitle(
        f"Support recovery of BP (FISTA) and OMP vs sparsity ({n_trials} trials per "
        "point, noiseless); shaded: guaranteed by the coherence bound"
    )
    return fig


def plot_pursuit_errors(errors: pd.DataFrame, one_shot: pd.DataFrame):
    """Relative error of every layer's code, and the objective of (P), against iterations.

    Args:
        errors: long table ``method``, ``iteration``, ``rel_error_<i>`` for each layer i,
            ``objective`` and ``objective_gap`` (relative to the minimum of (P); means over
            signals) for the iterative pursuits.
        one_shot: the same columns (no ``iteration``) for layered thresholding.
    """
    layers = sorted(int(c.rsplit("_", 1)[1]) for c in errors if c.startswith("rel_error_"))
    fig, axes = new_figure(1, len(layers) + 1, width=4.2, height=3.6)
    gap_ax = axes[-1]
    for method, rows in errors.groupby("method", sort=False):
        it = rows["iteration"]
        style = METHOD_STYLE[method]
        for layer, ax in zip(layers, axes, strict=False):
            ax.plot(it, rows[f"rel_error_{layer}"], label=method, **style)
        gap = rows["objective_gap"]
        gap_ax.plot(it[gap > 0], gap[gap > 0], label=method, **style)
    for layer, ax in zip(layers, axes, strict=False):
        for _, r in one_shot.iterrows():
            ax.axhline(
                r[f"rel_error_{layer}"], label=r["method"], **METHOD_STYLE["layered thresholding"]
            )
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel(
            f"mean $\\|\\hat\\gamma_{layer} - \\gamma_{layer}\\| / \\|\\gamma_{layer}\\|$"
        )
        ax.set_title(f"layer {layer}: $\\gamma_{layer}$")
        ax.legend(fontsize=7, loc="best")
    gap_ax.set_yscale("log")
    gap_ax.set_xlabel("iteration")
    gap_ax.set_ylabel("$(F - F^*) / |F^*|$ of problem (P)")
    gap_ax.set_title("objective of the multi-layer BP (P)")
    gap_ax.legend(fontsize=7)
    model = " ".join(f"D_{i}" for i in layers) + f" \\gamma_{layers[-1]} + w"
    fig.suptitle(
        f"Multi-layer pursuits on $y = {model}$ (means over signals; layered "
        "thresholding with oracle cardinalities)"
    )
    return fig


def plot_forward_support(support: pd.DataFrame):
    """Support recovery of the forward pass (layered thresholding) against the noise level.

    Args:
        support: columns ``noise_std``, ``layer``, ``exact_recovery``, ``support_overlap``.
    """
    fig, (a1, a2) = new_figure(1, 2, width=4.8, height=3.6)
    colors = {1: "tab:blue", 2: "tab:red"}
    for layer, rows in support.groupby("layer"):
        c = colors.get(layer, None)
        a1.plot(
            rows["noise_std"],
            100 * rows["exact_recovery"],
            "o-",
            ms=3,
            color=c,
            label=f"$\\gamma_{layer}$",
        )
        a2.plot(
            rows["noise_std"],
            100 * rows["support_overlap"],
            "o-",
            ms=3,
            color=c,
            label=f"$\\gamma_{layer}$",
        )
    a1.set_ylabel("exact support recovery (% of signals)")
    a2.set_ylabel("true support found (% of non-zeros, mean)")
    for ax in (a1, a2):
        ax.set_xlabel("noise std $\\sigma$ (per entry of $y$)")
        ax.set_ylim(-3, 103)
        ax.legend(fontsize=8)
    n = int(support["n_signals"].iloc[0])
    fig.suptitle(
        f"Forward pass (layered thresholding, oracle biases) vs noise, {n} signals per level"
    )
    return fig


def plot_unfolding_accuracy(summary: pd.DataFrame, history: pd.DataFrame, dataset: str):
    """Test accuracy against the number of ML-ISTA unfoldings, and against epochs.

    Args:
        summary: one row per ``unfoldings`` with ``test_accuracy_mean``, ``test_accuracy_std``,
            ``n_parameters``, ``repeats``.
        history: ``unfoldings``, ``repeat``, ``epoch``, ``test_accuracy``.
    """
    fig, (a1, a2) = new_figure(1, 2, width=4.8, height=3.8)
    k = summary["unfoldings"].to_numpy()
    mean = 100 * summary["test_accuracy_mean"].to_numpy()
    std = 100 * np.nan_to_num(summary["test_accuracy_std"].to_numpy())
    a1.errorbar(
        k, mean, yerr=std, fmt="o-", capsize=3, color="tab:blue", label="ML-ISTA net (k unfoldings)"
    )
    ff = summary["unfoldings"] == 0
    if ff.any():
        a1.errorbar(
            k[ff],
            mean[ff],
            yerr=std[ff],
            fmt="s",
            ms=8,
            capsize=3,
            color="tab:red",
            label="feed-forward CNN (k = 0)",
        )
    for ki, m, p in zip(k, mean, summary["n_parameters"], strict=True):
        a1.annotate(
            f"{p:,} params",
            (ki, m),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=7,
        )
    a1.set_xlabel("ML-ISTA unfoldings k")
    a1.set_ylabel("test accuracy (%), mean $\\pm$ std over repeats")
    a1.set_xticks(k)
    a1.set_title(f"{int(summary['repeats'].iloc[0])} training runs per k")
    a1.legend(fontsize=8, loc="lower right")
    cmap = __import__("matplotlib").colormaps["viridis"]
    ks = sorted(history["unfoldings"].unique())
    for j, kk in enumerate(ks):
        h = history[history.unfoldings == kk].groupby("epoch")["test_accuracy"].mean()
        a2.plot(h.index, 100 * h.to_numpy(), color=cmap(j / max(len(ks) - 1, 1)), label=f"k = {kk}")
    a2.set_xlabel("epoch")
    a2.set_ylabel("test accuracy (%), mean over repeats")
    a2.set_title("training under the same budget")
    a2.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"Unfolded ML-ISTA network vs feed-forward CNN on {dataset} (same parameters for every k)"
    )
    return fig
