"""Digit data sets: the scikit-learn splits every task draws from, MNIST through one reader."""

import numpy as np
import pytest
import torch

from deepunfold.data.digits import (
    digit_images_split,
    load_digits_split,
    load_mnist_digits,
    read_mnist,
    sklearn_digits,
    stratified_split,
)
from deepunfold.data.mnist import Digits, MNISTFileError, raw_paths, write_raw
from deepunfold.io import MissingResourceError


def test_stratified_split_is_seeded_and_keeps_class_shares():
    images, labels = sklearn_digits()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797,)
    train, test = stratified_split(labels, 0.25, seed=0)
    assert len(test) == 450 and len(np.intersect1d(train, test)) == 0
    assert len(train) + len(test) == len(labels)
    share = np.bincount(labels[test], minlength=10) / np.bincount(labels, minlength=10)
    np.testing.assert_allclose(share, 0.25, atol=0.01)
    again, _ = stratified_split(labels, 0.25, seed=0)
    other, _ = stratified_split(labels, 0.25, seed=1)
    assert np.array_equal(again, train) and not np.array_equal(other, train)
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(labels, 1.0, seed=0)


def test_the_two_views_of_the_sklearn_digits_split_alike():
    """The ML-ISTA net's tensors and the tiny CLIP's images come from the same split."""
    data = load_digits_split(0.33, seed=2)
    images, labels, train_idx, test_idx = digit_images_split(0.33, seed=2)
    assert images.dtype == np.uint8 and images.max() == 255
    assert np.all(np.diff(train_idx) > 0) and np.all(np.diff(test_idx) > 0)  # sorted
    assert sorted(data.y_test.tolist()) == sorted(labels[test_idx].tolist())
    assert data.in_shape == (1, 8, 8) and data.y_train.dtype == torch.long
    # standardised with the training statistics
    assert abs(float(data.x_train.mean())) < 1e-5 and abs(float(data.x_train.std()) - 1) < 1e-5


def test_read_mnist_names_missing_and_corrupt_files(tmp_path):
    with pytest.raises(MissingResourceError, match="t10k-labels-idx1-ubyte"):
        read_mnist(tmp_path, train=True)
    rng = np.random.default_rng(0)
    for train, n in ((True, 6), (False, 4)):
        write_raw(
            Digits(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)),
            tmp_path,
            train,
        )
    images, labels = read_mnist(tmp_path, train=False)
    assert images.shape == (4, 28, 28) and images.dtype == np.uint8 and labels.dtype == np.int64
    digits = load_mnist_digits(tmp_path, train=False)
    np.testing.assert_array_equal(digits, images.astype(np.float32) / 255.0)
    labels_path = raw_paths(tmp_path, train=True)[1]
    labels_path.write_bytes(labels_path.read_bytes()[:-1])
    with pytest.raises(MNISTFileError, match="train-labels-idx1-ubyte"):
        read_mnist(tmp_path, train=True)
