"""Real MNIST digits: the packaged 5k subset, torchvision's raw files, and bad files."""

import gzip

import numpy as np
import pytest

from deepunfold.data.mnist import (
    MNISTFileError,
    load_mnist5k,
    load_raw,
    raw_paths,
    split_mnist5k,
    write_raw,
)


@pytest.fixture(scope="module")
def digits():
    return load_mnist5k()


def test_packaged_digits_are_mnist_shaped(digits):
    assert digits.images.shape == (5000, 28, 28) and digits.images.dtype == np.uint8
    assert np.bincount(digits.labels).tolist() == [500] * 10
    # real handwriting: dark background, bright strokes over roughly 19% of the pixels
    ink = (digits.images > 127).mean()
    assert 0.1 < ink < 0.3
    assert digits.images[:, 0, :].max() == 0  # MNIST's empty top row


def test_split_is_fixed_by_the_seed_stratified_and_disjoint(digits):
    train, test = split_mnist5k(seed=3)
    again, _ = split_mnist5k(seed=3)
    other, _ = split_mnist5k(seed=4)
    assert len(train.labels) == 4000 and len(test.labels) == 1000
    assert np.bincount(test.labels).tolist() == [100] * 10
    assert np.array_equal(train.images, again.images)
    assert not np.array_equal(train.images, other.images)
    rows = {d.tobytes() for d in digits.images}
    assert len(rows) == 5000  # no two packaged digits are identical, so pixels identify them
    tr = {d.tobytes() for d in train.images}
    te = {d.tobytes() for d in test.images}
    assert tr | te == rows and not tr & te


def test_raw_files_round_trip_and_match_torchvision(tmp_path, digits):
    from torchvision.datasets import MNIST

    sub = type(digits)(digits.images[:300], digits.labels[:300])
    for train in (True, False):
        write_raw(sub, tmp_path, train)
    back = load_raw(tmp_path, train=True)
    assert np.array_equal(back.images, sub.images)
    assert np.array_equal(back.labels, sub.labels)
    tv = MNIST(str(tmp_path), train=False, download=False)  # the peer reader
    assert np.array_equal(tv.data.numpy(), sub.images)
    assert np.array_equal(tv.targets.numpy(), sub.labels)


@pytest.fixture
def raw(tmp_path, digits):
    sub = type(digits)(digits.images[:50], digits.labels[:50])
    write_raw(sub, tmp_path, train=True)
    return tmp_path, *raw_paths(tmp_path, train=True)


def test_truncated_image_file_names_the_file(raw):
    root, images, _ = raw
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(MNISTFileError, match="train-images-idx3-ubyte.*truncated"):
        load_raw(root, train=True)


def test_wrong_magic_names_the_file(raw):
    root, images, _ = raw
    images.write_bytes(gzip.compress(images.read_bytes()))  # left gzipped by mistake
    with pytest.raises(MNISTFileError, match="train-images-idx3-ubyte.*magic number"):
        load_raw(root, train=True)


def test_label_count_mismatch_names_the_label_file(raw, digits):
    root, _, labels = raw
    n = 49
    labels.write_bytes((2049).to_bytes(4, "big") + n.to_bytes(4, "big") + bytes(n))
    with pytest.raises(MNISTFileError, match="train-labels-idx1-ubyte has 49 labels but"):
        load_raw(root, train=True)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(MNISTFileError, match="t10k-images-idx3-ubyte does not exist"):
        load_raw(tmp_path, train=False)
