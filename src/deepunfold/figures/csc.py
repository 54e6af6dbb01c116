"""Figures of task 7 (convolutional sparse coding in CNNs: SDNet against its ResNet, Res-CSC)."""

from __future__ import annotations

import pandas as pd
from matplotlib import colormaps

from deepunfold.figures.plotting import new_figure

MODEL_LABELS = {"cnn": "ResNet (plain conv stem)", "sdnet": "SDNet (CSC stem)"}
ROBUST_STYLE = {
    "cnn": dict(color="tab:gray", marker="s", label="ResNet (plain conv stem)"),
    "sdnet": dict(color="tab:blue", marker="o", label=r"SDNet, $\lambda$ as trained"),
    "sdnet_tuned": dict(
        color="tab:red",
        marker="^",
        label=r"SDNet, $\lambda$ raised at test time (chosen on validation)",
    ),
}
RES_STYLE = {
    "mlista": dict(color="tab:blue", marker="o", label="ML-ISTA net (layers start from 0)"),
    "rescsc": dict(color="tab:red", marker="s", label=r"Res-CSC ($\Gamma_i^0 = \Gamma_{i-2}$)"),
}


def plot_training(history: pd.DataFrame, parameters: pd.DataFrame, dataset: str):
    """Training loss and validation accuracy per epoch of the CNN and the SDNet.

    Args:
        history: ``model``, ``epoch``, ``train_loss``, ``val_accuracy``.
        parameters: ``model``, ``n_parameters``, ``test_accuracy``.
    """
    fig, (ax_loss, ax_acc) = new_figure(1, 2, width=4.8, height=3.6)
    for model, rows in history.groupby("model", sort=False):
        p = parameters.set_index("model").loc[model]
        label = (
            f"{MODEL_LABELS.get(model, model)}: {int(p['n_parameters']):,} parameters, "
            f"test {100 * p['test_accuracy']:.2f}%"
        )
        style = ROBUST_STYLE[model] | {"label": label, "marker": None}
        ax_loss.plot(rows["epoch"], rows["train_loss"], **style)
        ax_acc.plot(rows["epoch"], 100 * rows["val_accuracy"], **style)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training cross-entropy (mean per image)")
    ax_loss.set_title("training loss")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation accuracy (%)")
    ax_acc.set_title("validation accuracy")
    ax_acc.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"ResNet with a plain or a CSC first layer (SDNet) on {dataset}")
    return fig


def plot_robustness(robustness: pd.DataFrame, sweep: pd.DataFrame, dataset: str):
    """Test accuracy against the input noise, and SDNet's validation accuracy against lambda.

    Args:
        robustness: ``model`` (cnn, sdnet, sdnet_tuned), ``noise_std``, ``test_accuracy``,
            ``lambda``.
        sweep: ``noise_std``, ``lambda``, ``val_accuracy`` (SDNet, the grid of test lambdas).
    """
    fig, (ax, ax_lam) = new_figure(1, 2, width=5.0, height=3.8)
    for model, rows in robustness.groupby("model", sort=False):
        ax.plot(rows["noise_std"], 100 * rows["test_accuracy"], **ROBUST_STYLE[model])
    tuned = robustness[robustness.model == "sdnet_tuned"]
    for _, r in tuned.iterrows():
        ax.annotate(
            f"{r['lambda']:g}",
            (r["noise_std"], 100 * r["test_accuracy"]),
            textcoords="offset points",
            xytext=(3, 4),
            fontsize=6,
            color="tab:red",
        )
    ax.set_xlabel("std of the added Gaussian noise (pixel units, images in [0, 1])")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(r"accuracy under input noise (red labels: chosen $\lambda$)", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    trained = float(robustness.loc[robustness.model == "sdnet", "lambda"].iloc[0])
    cmap = colormaps["viridis"]
    levels = sorted(sweep["noise_std"].unique())
    for j, (std, rows) in enumerate(sweep.groupby("noise_std")):
        ax_lam.plot(
            rows["lambda"],
            100 * rows["val_accuracy"],
            marker="o",
            ms=3,
            color=cmap(j / max(len(levels) - 1, 1)),
            label=f"noise std {std:g}",
        )
    ax_lam.axvline(trained, color="k", ls=":", lw=1, label=rf"trained $\lambda$ = {trained:g}")
    ax_lam.set_xscale("log")
    ax_lam.set_xlabel(r"$\lambda$ of the CSC layer at test time")
    ax_lam.set_ylabel("validation accuracy (%)")
    ax_lam.set_title(r"SDNet: validation accuracy against test-time $\lambda$", fontsize=10)
    ax_lam.legend(fontsize=6, loc="best")
    fig.suptitle(f"Robustness to Gaussian input noise on {dataset}")
    return fig


def plot_res_csc(summary: pd.DataFrame, dataset: str):
    """Test accuracy against the number of ML-ISTA unfoldings, plain and Res-CSC initialised.

    Args:
        summary: ``variant`` (mlista, rescsc), ``unfoldings``, ``test_accuracy_mean``,
            ``test_accuracy_std`` (NaN for one repeat), ``repeats``, ``n_parameters``.
    """
    fig, ax = new_figure(1, 1, width=6.0, height=4.0)
    for variant, rows in summary.groupby("variant", sort=False):
        err = 100 * rows["test_accuracy_std"].fillna(0.0)
        style = RES_STYLE[variant] | {
            "label": f"{RES_STYLE[variant]['label']}, {int(rows['n_parameters'].iloc[0]):,} "
            "parameters"
        }
        ax.errorbar(
            rows["unfoldings"], 100 * rows["test_accuracy_mean"], yerr=err, capsize=3, **style
        )
    ax.set_xticks(sorted(summary["unfoldings"].unique()))
    ax.set_xlabel("ML-ISTA unfoldings after the forward pass (0: forward pass only)")
    ax.set_ylabel("test accuracy (%)")
    repeats = int(summary["repeats"].max())
    ax.set_title(
        f"Res-CSC against plain ML-ISTA initialisation\n{dataset}, mean over "
        f"{repeats} training run{'s' if repeats > 1 else ''}"
        f"{' (bars: one std)' if repeats > 1 else ''}",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="lower right")
    return fig
