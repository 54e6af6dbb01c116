"""Downloads of external data sets into ``resources/``, with clear failures when offline.

The pipeline never falls back silently from real to demo data: when a download fails, the
error says exactly which files to place where, so an air-gapped user can copy them in.
"""

from __future__ import annotations

from pathlib import Path

from deepunfold.data.torchvision_files import TORCHVISION
from deepunfold.io import MissingResourceError, require_files

# the missing-file error and the data sets' layout live below the pipeline layer, where the
# readers of data/ use them; the workflow imports them from here with the downloads
__all__ = ["MissingResourceError", "require_files", "TORCHVISION", "download_torchvision"]


def download_torchvision(name: str, root: str | Path, part: str = "files") -> list[Path]:
    """Download a torchvision data set (``"MNIST"`` or ``"CIFAR10"``) into ``root``.

    Returns the paths of its files (``part="train_files"``: CIFAR-10's training batches, kept
    apart so that the test files alone satisfy the stages that need no more). Raises
    :class:`MissingResourceError` naming the files to place under ``root`` if the download
    fails (e.g. no network).
    """
    import torchvision

    if name not in TORCHVISION:
        raise ValueError(f"unknown data set {name!r}; expected one of {sorted(TORCHVISION)}")
    root = Path(root)
    files = [root / f for f in TORCHVISION[name][part]]
    if all(f.is_file() for f in files):
        return files
    cls = getattr(torchvision.datasets, name)
    try:
        cls(root=str(root), train=part == "train_files", download=True)
        if name == "MNIST":
            cls(root=str(root), train=True, download=True)
    except Exception as err:  # network errors come in many types
        try:
            require_files(files, name, TORCHVISION[name]["how"])
        except MissingResourceError as missing:
            raise MissingResourceError(f"{missing}\n(download error: {err})") from err
    require_files(files, name, TORCHVISION[name]["how"])
    return files
