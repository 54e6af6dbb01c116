"""The full study's MNIST path on real files, as an air-gapped user would place them.

The packaged MNIST 5k digits are written as torchvision's raw IDX files under a temporary
resources/mnist/MNIST/raw/; the full configuration's `digits: mnist` RPCA data job and one
`dataset: mnist` ML-ISTA training job then run (reduced sizes) through the exact loading code
that users with the network run, and what they read must be the packaged digits, exactly.
"""

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import copy_workflow, snakemake

from deepunfold.data.mnist import split_mnist5k, write_raw
from deepunfold.data.moving_digits import load_split, make_moving_digits
from deepunfold.pipeline.config import resolve_config

pytestmark = pytest.mark.pipeline


def test_full_study_reads_placed_mnist_files_exactly(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    train, test = split_mnist5k(seed=0)
    root = wd / "resources" / "mnist"
    write_raw(train, root, train=True)
    write_raw(test, root, train=False)
    small = {
        "rpca": {"data": {"digits": "mnist", "n_train": 2, "n_val": 1, "n_test": 2}},
        "multilayer": {
            "network": {
                "dataset": "mnist",
                "unfoldings": [0],
                "epochs": 1,
                "repeats": 1,
                "device": "cpu",
            }
        },
    }
    (wd / "config" / "mnist_small.yaml").write_text(yaml.safe_dump(small))
    targets = ["results/rpca/data/test.npz", "results/multilayer/mlista_net/k0/summary.tsv"]
    proc = snakemake(wd, *targets, "--cores", "2", "--configfile=config/mnist_small.yaml")
    assert "download_mnist" not in proc.stdout  # the placed files are used as they are

    # the moving digits: regenerated here from the packaged digits, not from the files
    cfg = resolve_config(wd / "config/config.yaml", wd / "config/mnist_small.yaml")
    data = dict(cfg["rpca"]["data"])
    seed, n_test = data.pop("seed"), data.pop("n_test")
    for key in ("digits", "digit_size", "n_train", "n_val"):
        data.pop(key)
    expected = make_moving_digits(
        test.images.astype(np.float32) / 255.0, n_test, seed=seed + 2000, **data
    )
    got = load_split(wd / "results/rpca/data/test.npz")
    assert np.array_equal(got.sparse, expected.sparse)
    assert np.array_equal(got.x, expected.x)

    # the classifier: MNIST's own split, all 4,000 / 1,000 digits, and it learns them
    log = (wd / "logs/multilayer/train_k0.log").read_text()
    assert "MNIST: 4000 train / 1000 test images of shape (1, 28, 28)" in log
    summary = pd.read_csv(wd / "results/multilayer/mlista_net/k0/summary.tsv", sep="\t")
    assert summary["dataset"].tolist() == ["MNIST"]
    assert summary["test_accuracy"].iloc[0] > 0.8


def test_a_truncated_mnist_file_stops_the_job_naming_it(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    train, test = split_mnist5k(seed=0)
    root = wd / "resources" / "mnist"
    write_raw(train, root, train=True)
    images, _ = write_raw(test, root, train=False)
    images.write_bytes(images.read_bytes()[:-784])
    small = {"rpca": {"data": {"digits": "mnist", "n_train": 1, "n_val": 1, "n_test": 1}}}
    (wd / "config" / "mnist_small.yaml").write_text(yaml.safe_dump(small))
    proc = snakemake(
        wd,
        "results/rpca/data/test.npz",
        "--cores",
        "1",
        "--configfile=config/mnist_small.yaml",
        check=False,
    )
    assert proc.returncode != 0
    log = (wd / "logs/rpca/data.log").read_text() + proc.stdout
    assert "t10k-images-idx3-ubyte is truncated" in log
    assert not (wd / "results/rpca/data/test.npz").exists()
