"""The CSC classifiers' image sets (deepunfold.data.images): the offline digits and CIFAR-10's
missing-file error."""

import numpy as np
import pytest
import torch

from deepunfold.data.images import ImageData, load_cifar10, load_digit_images, load_image_data
from deepunfold.io import MissingResourceError


def test_digit_images_split_disjoint_stratified_and_reproducible():
    data = load_digit_images(size=16, inner_size=12, val_fraction=0.15, test_fraction=0.25)
    assert data.in_shape == (1, 16, 16) and data.n_classes == 10
    sizes = [len(data.y_train), len(data.y_val), len(data.y_test)]
    assert sum(sizes) == 1797
    assert abs(sizes[2] / 1797 - 0.25) < 0.01 and abs(sizes[1] / 1797 - 0.15) < 0.01
    splits = ((data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test))
    for x, y in splits:
        assert x.shape[0] == y.shape[0] and x.dtype == torch.float32
        assert 0 <= float(x.min()) and float(x.max()) <= 1
        assert len(torch.unique(y)) == 10  # every class in every split (stratified)
    # the class shares of the test split follow the whole set's to within one image per class
    whole = np.bincount(np.concatenate([data.y_train, data.y_val, data.y_test]), minlength=10)
    test = np.bincount(data.y_test.numpy(), minlength=10)
    assert np.all(np.abs(test - whole * sizes[2] / 1797) <= 1.5)
    # no image appears in two splits
    flat = [t.flatten(1) for t in (data.x_train, data.x_val, data.x_test)]
    rows = {tuple(r.tolist()) for r in flat[2]}
    assert not any(tuple(r.tolist()) in rows for r in flat[0][:200])
    again = load_digit_images(size=16, inner_size=12, val_fraction=0.15, test_fraction=0.25)
    assert torch.equal(again.y_test, data.y_test) and torch.equal(again.x_val, data.x_val)
    other = load_digit_images(size=16, inner_size=12, seed=1)
    assert not torch.equal(other.y_test, data.y_test)


def test_standardised_uses_the_training_statistics():
    data = load_image_data("digits", seed=0)
    z = data.standardised()
    assert isinstance(z, ImageData) and z.name == data.name
    x = z.x_train.transpose(0, 1).flatten(1)
    assert torch.allclose(x.mean(1), torch.zeros(1), atol=1e-5)
    assert torch.allclose(x.std(1), torch.ones(1), atol=1e-5)
    mean, std = data.channel_stats()
    assert torch.allclose(z.x_test, (data.x_test - mean[0]) / std[0])
    assert torch.equal(z.y_test, data.y_test)


def test_unknown_data_set_and_missing_cifar_are_named(tmp_path):
    with pytest.raises(ValueError, match="'mnist'"):
        load_image_data("mnist")
    with pytest.raises(MissingResourceError, match="CIFAR-10") as err:
        load_cifar10(tmp_path / "cifar10")
    assert "data_batch_1" in str(err.value) and "test_batch" in str(err.value)
    with pytest.raises(MissingResourceError):
        load_image_data("cifar10", root=tmp_path)
