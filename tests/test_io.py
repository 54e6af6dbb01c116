"""The bottom layer's file helpers: atomic writes, tables, the missing-file error."""

import subprocess
import sys

import pandas as pd
import pytest
import torch

from deepunfold.io import (
    MissingResourceError,
    atomic_path,
    read_table,
    require_files,
    to_numpy,
    write_table,
)


def test_atomic_path_renames_on_success_and_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "sub" / "a.txt"
    with atomic_path(out) as tmp:
        tmp.write_text("done")
        assert not out.exists()
    assert out.read_text() == "done"
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert out.read_text() == "done"
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.txt"]


@pytest.mark.parametrize("suffix", [".tsv", ".csv"])
def test_tables_round_trip_byte_for_byte(tmp_path, suffix):
    df = pd.DataFrame({"method": ["a", "b"], "value": [1 / 3, 2.5e-12]})
    first, second = tmp_path / f"x{suffix}", tmp_path / f"y{suffix}"
    write_table(df, first)
    write_table(read_table(first), second)
    assert first.read_bytes() == second.read_bytes()
    assert ("\t" in first.read_text()) == (suffix == ".tsv")


def test_require_files_names_every_missing_file(tmp_path):
    (tmp_path / "here").write_text("")
    require_files([tmp_path / "here"], "X", "get it")
    with pytest.raises(MissingResourceError, match="(?s)gone.*get it"):
        require_files([tmp_path / "here", tmp_path / "gone"], "X", "get it")


def test_to_numpy_detaches_and_copies_to_the_cpu():
    t = torch.ones(2, requires_grad=True) * 2
    assert to_numpy(t).tolist() == [2.0, 2.0]


def test_the_bottom_layer_imports_no_numerical_stack():
    code = (
        "import sys, deepunfold.io\n"
        "print(sorted(m for m in ('torch', 'numpy', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
