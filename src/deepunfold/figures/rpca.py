"""Figures of tasks 4 and 5 (learned robust PCA by unfolding)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection
from matplotlib.ticker import MaxNLocator

from deepunfold.figures.plotting import new_figure, plt

TASKS = {"l1": "Task 4, L1", "l12": "Task 5, L1,2"}
GROUPS = {"frame": "columns of the frame", "video": "pixel time series"}
METHODS = {
    "learned": "learned (unfolded)",
    "untrained": "untrained ISTA-RPCA",
    "pcp": "PCP (inexact ALM)",
}


def variant_title(mode: str, prox: str, n_layers: int | None = None) -> str:
    depth = f", {n_layers} layers" if n_layers else ""
    return f"{TASKS[prox]}: unfolded RPCA, {mode} arrangement{depth}"


def plot_loss(history: pd.DataFrame, mode: str, prox: str):
    """Training and validation loss per epoch; the kept (best validation) epoch is marked."""
    fig, ax = new_figure(width=6.0, height=3.8)
    ax.plot(history["epoch"], history["train_loss"], "o-", ms=3, label="training")
    ax.plot(history["epoch"], history["val_loss"], "s-", ms=3, label="validation")
    best = history.loc[history["val_loss"].idxmin()]
    ax.plot(
        [best["epoch"]], [best["val_loss"]], "k*", ms=12, label=f"kept: epoch {int(best['epoch'])}"
    )
    ax.set_yscale("log")
    ax.set_xlabel("epoch (0 = initialisation, untrained ISTA-RPCA)")
    ax.set_ylabel(r"MSE($\hat L$, L) + MSE($\hat S$, S)")
    ax.set_title(f"Loss of {variant_title(mode, prox)}", fontsize=10)
    ax.legend()
    return fig


def plot_thresholds(table: pd.DataFrame, history: pd.DataFrame, mode: str, prox: str):
    """Thresholds per layer (initial vs learned) and their trajectories over the epochs."""
    fig, axes = new_figure(2, 2, width=4.6, height=3.2)
    names = {"mu1": r"SVT threshold $\mu_1^k$", "mu2": r"sparse threshold $\mu_2^k$"}
    for col, key in enumerate(("mu1", "mu2")):
        ax = axes[0, col]
        ax.plot(table["layer"], table[f"{key}_init"], "o--", color="0.5", label="initial")
        ax.plot(table["layer"], table[key], "o-", color="tab:red", label="learned")
        ax.set_xticks(table["layer"])
        ax.set_xlabel("layer k")
        ax.set_ylabel(names[key] + " (units of X)")
        ax.legend(fontsize=8)
        ax = axes[1, col]
        for k in table["layer"]:
            ax.plot(history["epoch"], history[f"{key}_{k}"], "-", marker=".", label=f"layer {k}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(names[key])
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle(f"Learned thresholds, {variant_title(mode, prox)}", fontsize=10)
    return fig


def plot_singular_values(sv_learned: np.ndarray, sv_untrained: np.ndarray, mode: str, prox: str):
    """3-D: layer x singular-value index x mean singular value of L^k over the test set."""
    fig = plt.figure(figsize=(11, 4.8))
    matrix = "64x64 frame" if mode == "frame" else "4096 x T Casorati matrix"
    for pos, (sv, name) in enumerate(((sv_learned, "learned"), (sv_untrained, "untrained"))):
        ax = fig.add_subplot(1, 2, pos + 1, projection="3d")
        n_layers, n_sv = sv.shape
        idx = np.arange(1, n_sv + 1)
        cmap = plt.get_cmap("viridis")
        for k in range(n_layers):
            color = cmap(k / max(n_layers - 1, 1))
            ax.plot(np.full(n_sv, k + 1), idx, sv[k], color=color, lw=1.5)
            verts = [(idx[0], 0.0), *zip(idx, sv[k], strict=True), (idx[-1], 0.0)]
            ax.add_collection3d(
                PolyCollection([verts], color=color, alpha=0.25), zs=k + 1, zdir="x"
            )
        ax.set_xlabel("layer k")
        ax.set_ylabel("singular value index")
        ax.set_zlabel(r"mean $\sigma_i(L^k)$")
        ax.set_xticks(np.arange(1, n_layers + 1))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{METHODS[name]}", fontsize=10)
        ax.set_zlim(0, float(sv.max()) * 1.05)
        ax.view_init(elev=22, azim=-58)
    fig.suptitle(
        f"Singular values of $L^k$ ({matrix}) after each layer, mean over the test set\n"
        f"{variant_title(mode, prox)}",
        fontsize=10,
    )
    return fig


def plot_sparsity(stats: dict, mode: str, prox: str, target_group_fraction: float | None = None):
    """Per layer: fraction of zero entries of S^k and of all-zero L1,2 groups."""
    fig, axes = new_figure(1, 2, width=4.8, height=3.6)
    for ax, key, what in (
        (axes[0], "zero_fraction", "fraction of zero entries of $S^k$"),
        (axes[1], "zero_group_fraction", f"fraction of zero groups ({GROUPS[mode]})"),
    ):
        for name, style in (("learned", "o-"), ("untrained", "s--")):
            values = stats[f"{name}_{key}"]
            ax.plot(np.arange(1, len(values) + 1), values, style, label=METHODS[name])
        target = stats.get("target_zero_fraction") if key == "zero_fraction" else None
        target = target_group_fraction if key == "zero_group_fraction" else target
        if target is not None:
            ax.axhline(float(target), color="k", ls=":", lw=1, label="true S")
        ax.set_xticks(np.arange(1, len(values) + 1))
        ax.set_xlabel("layer k")
        ax.set_ylabel(what)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)
    fig.suptitle(f"Sparsity of $S^k$ per layer, test set, {variant_title(mode, prox)}", fontsize=10)
    return fig


def plot_examples(examples: dict, pcp: dict, mode: str, prox: str, sample: int, frame: int):
    """X, L, S, L_hat, S_hat for one test frame: learned, untrained and PCP side by side."""

    def img(a):
        return a[sample, frame if mode == "video" else 0]

    rows = [
        ("learned", examples["learned_low_hat"], examples["learned_sparse_hat"]),
        ("untrained", examples["untrained_low_hat"], examples["untrained_sparse_hat"]),
        ("pcp", pcp["low_hat"], pcp["sparse_hat"]),
    ]
    fig, axes = new_figure(len(rows), 5, width=2.1, height=2.25)
    x, low, sparse = img(examples["x"]), img(examples["low"]), img(examples["sparse"])
    lim_l = float(np.abs(low).max())
    for r, (name, low_hat, sparse_hat) in enumerate(rows):
        panels = [
            (x, "X (observed)", "gray", (float(x.min()), float(x.max()))),
            (low, "L (true background)", "RdBu_r", (-lim_l, lim_l)),
            (sparse, "S (true digits)", "gray", (0.0, 1.0)),
            (img(low_hat), r"$\hat L$", "RdBu_r", (-lim_l, lim_l)),
            (img(sparse_hat), r"$\hat S$", "gray", (0.0, 1.0)),
        ]
        for c, (a, title, cmap, (lo, hi)) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(a, cmap=cmap, vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.set_title(title, fontsize=9)
            if c == 0:
                ax.set_ylabel(METHODS[name], fontsize=9)
    where = f"sequence {sample}, frame {frame}" if mode == "video" else f"test frame {sample}"
    fig.suptitle(f"Test example ({where}; 64x64 px), {variant_title(mode, prox)}", fontsize=10)
    return fig


METHOD_ORDER = {"learned": 0, "untrained": 1, "pcp": 2, "ground truth": 3}


def sort_methods(table: pd.DataFrame) -> pd.DataFrame:
    """Rows by arrangement, then learned, untrained, PCP, ground truth, then variant."""
    return table.sort_values(
        ["mode", "method", "variant"],
        key=lambda s: s.map(METHOD_ORDER) if s.name == "method" else s,
    ).reset_index(drop=True)


def _method_labels(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the methods (not the ground truth) with a short label each."""
    methods = table[table["method"] != "ground truth"].copy()
    methods["label"] = [
        "PCP" if m == "pcp" else f"{'L1' if v == 'l1' else 'L1,2'} {m}"
        for m, v in zip(methods["method"], methods["variant"], strict=True)
    ]
    return methods


def _grouped_bars(ax, methods: pd.DataFrame, key: str):
    """One bar per method label and arrangement.

    Returns ``{mode: (rows, positions)}``: each arrangement's rows indexed by label, in the
    order of the bars, and the bars' x positions.
    """
    labels = list(dict.fromkeys(methods["label"]))
    modes = list(dict.fromkeys(methods["mode"]))
    width = 0.8 / len(modes)
    bars = {}
    for j, mode in enumerate(modes):
        sub = methods[methods["mode"] == mode].set_index("label").reindex(labels)
        pos = np.arange(len(labels)) + (j - (len(modes) - 1) / 2) * width
        ax.bar(pos, sub[key], width, label=f"{mode} arrangement")
        bars[mode] = (sub, pos)
    ax.set_xticks(np.arange(len(labels)))
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
    return bars


def plot_comparison(table: pd.DataFrame):
    """NMSE of L and S and the numerical rank of every method, per arrangement."""
    methods = _method_labels(table)
    fig, axes = new_figure(1, 3, width=3.6, height=3.8)
    for ax, key, what in (
        (axes[0], "nmse_low_db", "NMSE of L (dB)"),
        (axes[1], "nmse_sparse_db", "NMSE of S (dB)"),
        (axes[2], "rank", "mean numerical rank of $\\hat L$"),
    ):
        _grouped_bars(ax, methods, key)
        if key == "rank":
            truth = table[table["method"] == "ground truth"]
            for j, (_, row) in enumerate(truth.iterrows()):
                ax.axhline(
                    row["rank"], color=f"C{j}", ls=":", lw=1.2, label=f"true rank ({row['mode']})"
                )
        ax.set_ylabel(what)
        ax.legend(fontsize=7)
    fig.suptitle(
        "Tasks 4 and 5: learned RPCA (L1, L1,2) vs untrained ISTA-RPCA and PCP, test set",
        fontsize=10,
    )
    return fig


def plot_timing(timing: pd.DataFrame):
    """Wall-clock time per test sample of every method (log scale), speed-up over PCP on top."""
    methods = _method_labels(timing)
    fig, ax = new_figure(width=6.4, height=4.0)
    for sub, pos in _grouped_bars(ax, methods, "time_per_sample_ms").values():
        for x, (label, row) in zip(pos, sub.iterrows(), strict=True):
            if label != "PCP" and np.isfinite(row["speedup_vs_pcp"]):
                ax.annotate(
                    f"{row['speedup_vs_pcp']:.1f}x",
                    (x, row["time_per_sample_ms"]),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_yscale("log")
    ax.set_ylabel("time per sample (ms, log scale; one thread)")
    ax.legend(fontsize=7)
    ax.set_title(
        "Tasks 4 and 5: time per test sample on this machine (label: speed-up over PCP)", fontsize=9
    )
    return fig
