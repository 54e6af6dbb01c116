"""Plotting helpers shared by every figure of the study.

Figures are written reproducibly: the same data gives byte-identical PNG and PDF files
(no timestamps in the metadata), so that the figure manifest can be compared across runs.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures are files, never windows

import matplotlib.pyplot as plt  # noqa: E402

from deepunfold.io import atomic_path  # noqa: E402

__all__ = ["plt", "new_figure", "save_figure", "demo_note"]

# Fixed metadata: no creation date, so that reruns give identical bytes.
_PNG_META = {"Software": None}
_PDF_META = {"Creator": None, "Producer": None, "CreationDate": None}

STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
    "legend.frameon": False,
    "svg.hashsalt": "deepunfold",
}


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.0, height: float = 4.0, **kw):
    """A figure with the package's style; ``width``/``height`` are per panel, in inches."""
    plt.rcParams.update(STYLE)
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), **kw)


def demo_note(fig, text: str | None) -> None:
    """Stamp a provenance note (e.g. "demo backbone") in the figure's bottom-left corner."""
    if text:
        fig.text(0.005, 0.005, text, fontsize=7, color="0.35", ha="left", va="bottom")


def save_figure(fig, *paths: str | Path) -> None:
    """Save ``fig`` to each path (format from the suffix, PNG and/or PDF), atomically."""
    fig.tight_layout()
    for path in paths:
        path = Path(path)
        suffix = path.suffix.lower()
        meta = _PDF_META if suffix == ".pdf" else _PNG_META if suffix == ".png" else None
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=suffix.lstrip("."), metadata=meta)
    plt.close(fig)
