"""The library's bottom layer: file helpers every module that writes or reads files uses.

* atomic writes (:func:`atomic_path`), so that a killed job never leaves a file that looks
  complete, and deterministic tables on top of them (:func:`write_table`, :func:`read_table`);
* the missing-file error of external data (:class:`MissingResourceError`,
  :func:`require_files`): the library never falls back silently from real to demo data;
* :func:`to_numpy`, a tensor as the array that ``np.savez`` writes.

It imports the standard library only (pandas inside the table functions), so the modules the
workflow imports while it parses the Snakefile (``deepunfold.pipeline.resources`` re-exports
the error from here) stay light. ``deepunfold.pipeline.io`` re-exports the writers for the
workflow's scripts; modules below the pipeline layer import them from here.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch

__all__ = [
    "atomic_path",
    "write_table",
    "read_table",
    "MissingResourceError",
    "require_files",
    "to_numpy",
]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The rename is atomic on POSIX file systems, so readers see either the old file, no file,
    or the complete new one, never a partial write. On an exception the temporary file is
    removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_table(df: pd.DataFrame, path: str | Path, float_format: str = "%.10g") -> None:
    """Write a table as TSV (``.tsv``) or CSV (``.csv``), atomically and deterministically."""
    path = Path(path)
    sep = "\t" if path.suffix == ".tsv" else ","
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep=sep, index=False, float_format=float_format, lineterminator="\n")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`write_table`."""
    import pandas as pd

    path = Path(path)
    return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")


class MissingResourceError(RuntimeError):
    """An external file is missing and could not be downloaded."""


def require_files(paths, what: str, how: str) -> None:
    """Raise :class:`MissingResourceError` listing the ``paths`` that do not exist.

    Args:
        paths: files that must exist.
        what: a short name of the resource (``"MNIST"``).
        how: where to get the files (a URL or instructions).
    """
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        listing = "\n  ".join(missing)
        raise MissingResourceError(
            f"{what} is not available and could not be downloaded here.\n"
            f"Place these files and rerun:\n  {listing}\n{how}"
        )


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """``t`` detached, on the CPU, as a NumPy array (what ``np.savez`` writes)."""
    return t.detach().cpu().numpy()
