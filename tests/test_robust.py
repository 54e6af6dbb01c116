"""Task 1: numerical minimisers agree with mean / median / mode; breakdown behaves."""

import numpy as np
import pytest

from deepunfold.studies.robust_location import (
    breakdown_sweep,
    closed_form,
    estimate_all,
    loss,
    minimise_loss,
)

SEED_DATA = [1, 1, 1, 6, 1, 1]


def test_seed_observations():
    est = {e.loss: e for e in estimate_all(SEED_DATA)}
    assert est["l2"].numerical == pytest.approx(11 / 6, abs=1e-9)
    assert est["l1"].numerical == pytest.approx(1.0, abs=1e-9)
    assert est["l0"].numerical == 1.0
    assert est["l2"].closed_form == pytest.approx(11 / 6)
    assert est["l1"].closed_form == 1.0 and est["l0"].closed_form == 1.0
    assert all(e.agree for e in est.values())
    assert est["l0"].loss_at_numerical == 1.0  # only the outlier differs


@pytest.mark.parametrize("seed", range(5))
def test_random_data_numerical_matches_closed_form(seed):
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=rng.integers(3, 15)) * 3, 1)  # rounded: repeats exist
    for e in estimate_all(x, eps=0.0):
        assert e.agree, e
    z2, _ = minimise_loss("l2", x)
    assert z2 == pytest.approx(x.mean(), abs=1e-8)


def test_even_count_median_interval():
    x = [0.0, 1.0, 3.0, 10.0]
    z, f = minimise_loss("l1", x)
    assert 1.0 - 1e-9 <= z <= 3.0 + 1e-9
    assert f == pytest.approx(float(loss("l1", x, closed_form("l1", x))))


def test_window_mode():
    x = [0.0, 0.1, 0.2, 5.0, 5.05]
    assert closed_form("l0", x, eps=0.15) == pytest.approx(0.1)
    z, f = minimise_loss("l0", x, eps=0.15)
    assert z == pytest.approx(0.1) and f == 2.0


def test_unknown_loss():
    with pytest.raises(ValueError, match="unknown loss"):
        loss("l3", [1.0], 0.0)


def test_breakdown_points():
    by_mag, by_count = breakdown_sweep(
        true_value=1.0,
        n_obs=11,
        noise_std=0.05,
        eps=0.2,
        magnitudes=[0, 1, 10, 100],
        n_outliers_fixed=3,
        magnitude_fixed=20.0,
        n_trials=50,
        seed=0,
    )
    err = by_mag.set_index(["estimator", "magnitude"])["mean_abs_error"]
    # the mean's error grows linearly with the outliers; the median's stays bounded
    assert err["l2", 100] == pytest.approx(3 / 11 * 100, rel=0.02)
    assert err["l1", 100] < 0.1 and err["l0", 100] < 0.2
    cnt = by_count.set_index(["estimator", "n_outliers"])["mean_abs_error"]
    assert cnt["l1", 5] < 0.5 < cnt["l1", 6]  # median breaks down past half the data
    assert cnt["l2", 1] > 1.0  # a single outlier moves the mean
