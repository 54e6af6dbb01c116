"""Task 7 end-to-end on the demo: the ResNet/SDNet pair, robustness table, Res-CSC table."""

import math

import pytest
from helpers import DEMO, copy_workflow, job_counts, snakemake

from deepunfold.pipeline.io import read_table
from deepunfold.train.loop import count_parameters
from deepunfold.unfolded.csc import resnet

pytestmark = pytest.mark.pipeline

TARGETS = [
    "results/csc/parameters.tsv",
    "results/csc/robustness.tsv",
    "results/csc/res_csc/accuracy.tsv",
    "results/figures/csc/training.png",
    "results/figures/csc/robustness.png",
    "results/figures/csc/res_csc.png",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("csc"))
    snakemake(wd, *TARGETS, *DEMO)
    return wd


def test_pair_has_equal_parameter_counts_and_learns(demo):
    table = read_table(demo / "results/csc/parameters.tsv").set_index("model")
    assert sorted(table.index) == ["cnn", "sdnet"]
    # the demo's ResNet (widths 8-16-32, one block per stage) on 1-channel digits
    expected = count_parameters(resnet("cnn", 1, 10, (8, 16, 32), (1, 1, 1)))
    assert table["n_parameters"].tolist() == [expected, expected] == [19_810, 19_810]
    assert (table["test_accuracy"] > 0.8).all(), table  # chance is 0.1
    log = (demo / "logs/csc/compare.log").read_text()
    assert "equal parameter counts" in log


def test_robustness_table(demo):
    rob = read_table(demo / "results/csc/robustness.tsv")
    sweep = read_table(demo / "results/csc/lambda_sweep.tsv")
    stds, factors = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3], [1.5, 2, 3, 5, 10]
    assert len(rob) == 3 * len(stds) and sorted(rob["noise_std"].unique()) == stds
    assert len(sweep) == len(stds) * (1 + len(factors))
    by = {m: rows.set_index("noise_std") for m, rows in rob.groupby("model")}
    params = read_table(demo / "results/csc/parameters.tsv").set_index("model")
    # noise 0 reproduces the trained models' test accuracies
    for model in ("cnn", "sdnet"):
        assert by[model].loc[0.0, "test_accuracy"] == pytest.approx(
            params.loc[model, "test_accuracy"]
        )
    # lambda is chosen on validation among a grid that holds the trained one
    assert (by["sdnet"]["lambda"] == 0.1).all()
    assert (by["sdnet_tuned"]["lambda"] >= 0.1).all()
    assert (by["sdnet_tuned"]["val_accuracy"] >= by["sdnet"]["val_accuracy"]).all()
    best = sweep.loc[sweep.groupby("noise_std")["val_accuracy"].idxmax()].set_index("noise_std")
    assert (best["val_accuracy"] == by["sdnet_tuned"]["val_accuracy"]).all()
    # noise hurts: the strongest level costs every model accuracy
    for rows in by.values():
        assert rows.loc[0.3, "test_accuracy"] < rows.loc[0.0, "test_accuracy"] - 0.2
    assert math.isnan(by["cnn"]["lambda"].iloc[0])


def test_res_csc_table(demo):
    table = read_table(demo / "results/csc/res_csc/accuracy.tsv")
    assert list(zip(table["variant"], table["unfoldings"], strict=True)) == [
        ("mlista", 0),
        ("mlista", 1),
        ("mlista", 2),
        ("rescsc", 0),
        ("rescsc", 1),
        ("rescsc", 2),
    ]
    assert table["n_parameters"].nunique() == 1 and (table["repeats"] == 2).all()
    assert (table["test_accuracy_mean"] > 0.8).all(), table
    assert (
        "starting from the code two layers back: [3, 4]"
        in (demo / "logs/csc/res_csc_rescsc_k0.log").read_text()
    )


def test_rerun_is_a_no_op(demo):
    proc = snakemake(demo, *TARGETS, *DEMO, "--dry-run")
    assert "Nothing to be done" in proc.stdout, proc.stdout[-3000:]


def test_full_study_dag(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    full = job_counts(snakemake(wd, "results/figures/all", "--cores", "2", "--dry-run").stdout)
    # the training batches are their own download: task 2 needs only the test files
    assert full["download_cifar10"] == full["download_cifar10_train"] == 1, full
    assert full["csc_train"] == 2 and full["csc_rescsc_train"] == 2 * 4, full
    assert full["csc_robustness"] == full["csc_compare"] == full["csc_rescsc"] == 1, full
