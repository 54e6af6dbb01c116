"""Downloads of external data sets into ``resources/``, with clear failures when offline.

The pipeline never falls back silently from real to demo data: when a download fails, the
error says exactly which files to place where, so an air-gapped user can copy them in.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MissingResourceError", "require_files", "download_torchvision"]


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


# torchvision's on-disk layout of the data sets the study uses, and where to get them
TORCHVISION = {
    "MNIST": {
        "files": [
            "MNIST/raw/train-images-idx3-ubyte",
            "MNIST/raw/train-labels-idx1-ubyte",
            "MNIST/raw/t10k-images-idx3-ubyte",
            "MNIST/raw/t10k-labels-idx1-ubyte",
        ],
        "how": "Get them (gunzipped) from https://ossci-datasets.s3.amazonaws.com/mnist/ "
        "or any MNIST mirror.",
    },
    "CIFAR10": {
        "files": [
            "cifar-10-batches-py/test_batch",
            "cifar-10-batches-py/batches.meta",
        ],
        # the training batches (task 7 trains on them; the same archive holds both)
        "train_files": [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)],
        "how": "Get cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
        "and unpack it there.",
    },
}


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
