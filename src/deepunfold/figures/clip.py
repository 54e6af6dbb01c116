"""Figures of task 2 (sparse concept decompositions of CLIP embeddings)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepunfold.figures.plotting import new_figure


def plot_accuracy_vs_lambda(table1: pd.DataFrame, dense_acc: float, chance: float, what: str):
    """Zero-shot accuracy of the sparse codes at each lambda against the dense embeddings."""
    fig, ax = new_figure(width=6.5, height=4.0)
    lams = table1["lambda"].to_numpy(float)
    ax.plot(lams, 100 * table1["accuracy"], "o-", color="tab:blue", label="sparse (A w + mean)")
    ax.axhline(100 * dense_acc, color="k", lw=1.5, label=f"dense: {100 * dense_acc:.2f} %")
    ax.axhline(100 * chance, color="0.5", ls=":", lw=1.2, label=f"chance: {100 * chance:.1f} %")
    ax.set_xscale("log")
    ax.set_xlabel(r"$\lambda$ (log scale)")
    ax.set_ylabel("zero-shot accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"Dense vs sparse zero-shot accuracy, {what}")
    ax.legend(fontsize=8, loc="lower left")
    return fig


def plot_accuracy_vs_nnz(table1: pd.DataFrame, dense_acc: float, chance: float, what: str):
    """Accuracy against mean non-zeros per image, each point labelled with its lambda."""
    fig, ax = new_figure(width=6.5, height=4.0)
    nnz = table1["mean_nnz"].to_numpy(float)
    acc = 100 * table1["accuracy"].to_numpy(float)
    ax.plot(nnz, acc, "o-", color="tab:blue", label="sparse codes")
    # labels alternate below the curve at growing depth so that crowded points stay legible
    for k, (x, y, lam) in enumerate(zip(nnz, acc, table1["lambda"], strict=True)):
        ax.annotate(
            f"λ={lam:g}",
            (x, y),
            textcoords="offset points",
            fontsize=7,
            xytext=(0, (-12 - 9 * (k % 4)) if y > 25 else 12),
            ha="center",
            rotation=0,
            arrowprops={"arrowstyle": "-", "color": "0.7", "lw": 0.5},
        )
    ax.axhline(100 * dense_acc, color="k", lw=1.5, label=f"dense: {100 * dense_acc:.2f} %")
    ax.axhline(100 * chance, color="0.5", ls=":", lw=1.2, label=f"chance: {100 * chance:.1f} %")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=-0.2)
    ax.set_xlabel("mean non-zero concept weights per image (symlog scale)")
    ax.set_ylabel("zero-shot accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(f"Accuracy vs sparsity, {what}")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_concept_panel(image: np.ndarray, concepts, weights, title: str, k: int):
    """An image beside its ``k`` concepts of largest |weight| (signed bars, ranked by |w|)."""
    fig, (ax_img, ax_bar) = new_figure(
        1, 2, width=4.0, height=3.6, gridspec_kw={"width_ratios": [1, 1.4]}
    )
    ax_img.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
    ax_img.set_axis_off()
    ax_img.set_title(title, fontsize=9)
    w = np.asarray(weights, float)
    order = np.argsort(-np.abs(w), kind="stable")[:k]
    names = [concepts[i] for i in order][::-1]
    vals = w[order][::-1]
    colors = ["tab:blue" if v > 0 else "tab:red" for v in vals]
    ax_bar.barh(range(len(vals)), vals, color=colors)
    ax_bar.set_yticks(range(len(vals)), names, fontsize=8)
    ax_bar.axvline(0, color="k", lw=0.8)
    ax_bar.set_xlabel("concept weight $w_j$ (blue > 0, red < 0)")
    ax_bar.set_title(f"top {len(vals)} of {int((w != 0).sum())} active concepts by |w|", fontsize=9)
    return fig


def plot_tinyclip_training(losses, what: str):
    """Contrastive training loss of the demo backbone per step."""
    fig, ax = new_figure(width=6.0, height=3.6)
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, color="0.6", lw=0.8, label="per step")
    if len(losses) >= 20:
        k = 20
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], smooth, color="tab:blue", lw=1.5, label=f"mean of {k} steps")
    ax.set_xlabel("training step")
    ax.set_ylabel("contrastive loss (nats)")
    ax.set_title(f"Training of the demo backbone ({what})")
    ax.legend(fontsize=8)
    return fig
