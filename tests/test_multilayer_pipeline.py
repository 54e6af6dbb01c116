"""Task 6 end-to-end: one training job per unfolding count; adding a k runs only that job."""

import pytest
from helpers import DEMO, copy_workflow, job_counts, snakemake

from deepunfold.pipeline.io import read_table

pytestmark = pytest.mark.pipeline

TARGET = "results/multilayer/mlista_net/accuracy.tsv"


def tiny(wd, unfoldings=(0, 1), epochs=1):
    """Arguments for the demo config plus an override file that shrinks the network to
    seconds per job (passed as a second config file: later files win, key by key)."""
    override = wd / f"tiny_{'_'.join(map(str, unfoldings))}_{epochs}.yaml"
    override.write_text(
        "multilayer:\n  network:\n"
        f"    unfoldings: {list(unfoldings)}\n    epochs: {epochs}\n"
        "    repeats: 1\n    channels: [4, 8, 8]\n"
        # scikit-learn's 8x8 digits and a 3x3 network: seconds, and a countable size
        "    dataset: digits\n    kernel_sizes: [3, 3, 3]\n    strides: [1, 2, 2]\n"
        "    paddings: [1, 1, 1]\n"
    )
    return ("--cores", "2", "--configfile", "config/demo.yaml", override.name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("multilayer"))
    snakemake(wd, TARGET, *tiny(wd))
    return wd


def test_accuracy_table_has_one_row_per_k_with_equal_parameters(trained):
    table = read_table(trained / TARGET)
    assert table["unfoldings"].tolist() == [0, 1]
    assert table["n_parameters"].nunique() == 1
    # 8x8 digits, channels 4-8-8: 4*1*9 + 8*4*9 + 8*8*9 + 3 steps + 20 thresholds + 8*2*2*10 + 10
    assert table["n_parameters"].iloc[0] == 36 + 288 + 576 + 3 + 20 + 330
    assert ((table.test_accuracy_mean > 0.1) & (table.test_accuracy_mean <= 1)).all()
    assert (trained / "results/multilayer/mlista_net/k1/history.tsv").is_file()


def test_adding_an_unfolding_trains_only_that_k(trained):
    proc = snakemake(trained, TARGET, "--dry-run", *tiny(trained, (0, 1, 3)))
    counts = job_counts(proc.stdout)
    assert counts == {"multilayer_train": 1, "multilayer_unfolding": 1, "total": 2}, counts
    assert (
        "k3/summary.tsv" in proc.stdout
        and "k0/summary.tsv" not in proc.stdout.split("rule multilayer_unfolding")[0]
    )


def test_changing_the_budget_retrains_every_k(trained):
    proc = snakemake(trained, TARGET, "--dry-run", *tiny(trained, epochs=2))
    counts = job_counts(proc.stdout)
    assert counts["multilayer_train"] == 2 and counts["multilayer_unfolding"] == 1, counts


def test_rerun_is_a_no_op(trained):
    proc = snakemake(trained, TARGET, "--dry-run", *tiny(trained))
    assert "Nothing to be done" in proc.stdout, proc.stdout[-3000:]


def test_demo_and_full_study_dags(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    figures = [
        f"results/figures/multilayer/{name}.png"
        for name in ["coherence_recovery", "pursuit_errors", "forward_support"]
    ]
    demo = job_counts(snakemake(wd, TARGET, *figures, *DEMO, "--dry-run").stdout)
    assert demo == {
        "multilayer_coherence": 1,
        "multilayer_forward_support": 1,
        "multilayer_pursuits": 1,
        "multilayer_train": 4,
        "multilayer_unfolding": 1,
        "total": 8,
    }, demo
    # the full study trains on MNIST, so its download rule is in the DAG
    full = job_counts(snakemake(wd, TARGET, "--cores", "2", "--dry-run").stdout)
    assert full["download_mnist"] == 1 and full["multilayer_train"] == 5, full
