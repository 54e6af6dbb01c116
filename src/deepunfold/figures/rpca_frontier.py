"""The RPCA quality-versus-time frontier figure (tasks 4 and 5)."""

from __future__ import annotations

import pandas as pd

from deepunfold.figures.plotting import new_figure
from deepunfold.figures.rpca import TASKS

MARKERS = {"LRPCA": "D", "learned": "*", "untrained": "s", "PCP": "o", "AccAltProj": "^"}


def _marker(method: str) -> str:
    for key, marker in MARKERS.items():
        if key in method:
            return marker
    return "o"


def plot_frontier(
    table: pd.DataFrame,
    mode: str | None = None,
    prox: str | None = None,
    digits: str | None = None,
    *,
    title: str | None = None,
):
    """NMSE of S and of L (dB) against ms per sample: one curve per method, budgets labelled.

    ``table`` has the columns of :func:`deepunfold.studies.rpca_frontier.measure`. The title
    names the task, arrangement and digits, or is ``title`` (the synthetic problems); it
    always says that AccAltProj and LRPCA are given the true rank.
    """
    fig, axes = new_figure(1, 2, width=5.8, height=4.4)
    for ax, key, part in (
        (axes[0], "nmse_s_db", "S (digits)"),
        (axes[1], "nmse_l_db", "L (background)"),
    ):
        for method, pts in table.groupby("method", sort=False):
            pts = pts.sort_values("ms_per_sample")
            ax.plot(
                pts["ms_per_sample"],
                pts[key],
                marker=_marker(method),
                label=method,
                markersize=9 if "learned" in method else 5,
            )
            if "ISTA" in method or "learned" in method:  # LRPCA's name says "learned" too
                for _, p in pts.iterrows():
                    ax.annotate(
                        p["budget"],
                        (p["ms_per_sample"], p[key]),
                        fontsize=7,
                        xytext=(3, 3),
                        textcoords="offset points",
                    )
        front = (
            table[table["on_frontier"]].sort_values("ms_per_sample") if key == "nmse_s_db" else None
        )
        if front is not None and len(front):
            ax.step(
                front["ms_per_sample"],
                front[key],
                where="post",
                color="0.6",
                lw=0.8,
                ls=":",
                label="frontier (S)",
            )
        ax.set_xscale("log")
        ax.set_xlabel("time per test sample (ms, one thread, log scale)")
        ax.set_ylabel(f"test NMSE of {part} (dB)")
        ax.set_title(f"{part}")
    axes[0].legend(fontsize=7, loc="best")
    if title is None:
        title = f"{TASKS[prox]}: RPCA quality vs time, {mode} arrangement, {digits}"
    given = [m for m in ("AccAltProj", "LRPCA") if table["method"].str.contains(m).any()]
    fig.suptitle(title + (f"; {' and '.join(given)} given the true rank" if given else ""))
    return fig
