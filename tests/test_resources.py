"""Missing downloads fail with a message naming the files to place and where."""

import pytest
from helpers import copy_workflow, snakemake

from deepunfold.io import MissingResourceError, require_files


def test_require_files_names_missing(tmp_path):
    present = tmp_path / "a"
    present.write_text("x")
    with pytest.raises(MissingResourceError) as err:
        require_files([present, tmp_path / "b"], "Thing", "Get it from X.")
    assert str(tmp_path / "b") in str(err.value) and str(present) not in str(err.value)
    require_files([present], "Thing", "unused")


@pytest.mark.pipeline
def test_offline_download_rule_explains(tmp_path):
    """Offline (as here and in CI) the MNIST rule fails, saying which file goes where."""
    wd = copy_workflow(tmp_path / "wf")
    proc = snakemake(
        wd,
        "--cores",
        "1",
        "resources/mnist/MNIST/raw/t10k-images-idx3-ubyte",
        check=False,
        timeout=600,
    )
    log = (wd / "logs/resources/mnist.log").read_text()
    if proc.returncode == 0:
        pytest.skip("this machine has network access: MNIST was downloaded")
    assert "resources/mnist/MNIST/raw/t10k-images-idx3-ubyte" in log
    assert "Place these files" in log
    assert not (wd / "resources/mnist/MNIST/raw/t10k-images-idx3-ubyte").exists()
