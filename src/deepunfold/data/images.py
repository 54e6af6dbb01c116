"""Labelled image sets for the CSC classifiers (task 7): scikit-learn's shipped digits,
upsampled (offline), and CIFAR-10 from torchvision's files (no download), each split into
train/validation/test."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["ImageData", "load_digit_images", "load_cifar10", "load_image_data"]


@dataclass
class ImageData:
    """Images ``(N, C, H, W)`` in pixel units ([0, 1]) with int labels; train/val/test."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        return int(self.y_train.max()) + 1

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the training images."""
        x = self.x_train.transpose(0, 1).flatten(1)
        return x.mean(1).tolist(), x.std(1).tolist()

    def standardised(self) -> ImageData:
        """A copy with every split standardised by the training images' channel statistics."""
        mean, std = (torch.tensor(v).reshape(1, -1, 1, 1) for v in self.channel_stats())
        return ImageData(
            *(
                (t - mean) / std if i % 2 == 0 else t
                for i, t in enumerate(
                    (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test)
                )
            ),
            name=self.name,
        )


def _split(n: int, fractions: Sequence[float], labels: np.ndarray, seed: int):
    """Train/val/test indices: the test share first, then validation out of the rest, each
    stratified by class (:func:`deepunfold.data.digits.stratified_split`)."""
    from deepunfold.data.digits import stratified_split

    rest, test = stratified_split(labels[:n], fractions[1], seed)
    val_share = fractions[0] / (1 - fractions[1])
    train, val = stratified_split(labels[rest], val_share, seed)
    return rest[train], rest[val], test


def load_digit_images(
    size: int = 16,
    inner_size: int = 12,
    val_fraction: float = 0.15,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> ImageData:
    """scikit-learn's 1,797 shipped 8x8 digits upsampled to ``size`` pixels (the digit
    ``inner_size`` wide, centred), split stratified into train/val/test."""
    from sklearn.datasets import load_digits

    from deepunfold.data.moving_digits import load_sklearn_digits

    x = torch.from_numpy(load_sklearn_digits(size, inner_size))[:, None]
    y = load_digits().target
    tr, va, te = _split(len(y), (val_fraction, test_fraction), y, seed)
    y = torch.from_numpy(y).long()
    name = f"scikit-learn digits (8x8 upsampled to {size}x{size})"
    return ImageData(x[tr], y[tr], x[va], y[va], x[te], y[te], name)


def load_cifar10(
    root, val_size: int = 5000, limit_train: int | None = None, seed: int = 0
) -> ImageData:
    """CIFAR-10 from torchvision's files under ``root`` (no download): the 50,000 training
    images less ``val_size`` held out for validation (fixed seed), and the 10,000 test images."""
    from torchvision.datasets import CIFAR10

    from deepunfold.data.torchvision_files import TORCHVISION
    from deepunfold.io import require_files

    info = TORCHVISION["CIFAR10"]
    require_files(
        [f"{root}/{f}" for f in info["files"] + info["train_files"]], "CIFAR-10", info["how"]
    )

    def tensors(train):
        ds = CIFAR10(str(root), train=train, download=False)
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).float() / 255.0
        return x, torch.tensor(ds.targets, dtype=torch.long)

    x, y = tensors(True)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    va, tr = order[:val_size], order[val_size:]
    if limit_train is not None:
        tr = tr[:limit_train]
    x_te, y_te = tensors(False)
    return ImageData(x[tr], y[tr], x[va], y[va], x_te, y_te, "CIFAR-10")


def load_image_data(dataset: str, *, root=None, seed: int = 0, **options) -> ImageData:
    """``"digits"`` (:func:`load_digit_images`, offline) or ``"cifar10"``
    (:func:`load_cifar10` from ``root``); ``options`` are that loader's keyword arguments."""
    if dataset == "digits":
        return load_digit_images(seed=seed, **options)
    if dataset == "cifar10":
        return load_cifar10(root, seed=seed, **options)
    raise ValueError(f"unknown data set {dataset!r}; expected 'digits' or 'cifar10'")
