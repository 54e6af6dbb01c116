"""The figure manifest: results hashed, wall-clock measurements listed apart, only when complete."""

import json

import pytest

from deepunfold.pipeline.manifest import build_manifest, is_measurement, sha256, write_manifest


def _files(root, files):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return sorted(files)


def test_results_are_hashed_and_measurements_listed_by_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = _files(
        tmp_path,
        {
            "results/rpca/comparison.tsv": "mode\tnmse\nframe\t-12.5\n",
            "results/figures/rpca/comparison.png": "png bytes",
            "results/benchmarks/rpca/time_per_sample.tsv": "mode\tms\nframe\t3.2\n",
        },
    )
    m = build_manifest(paths, {"seed": 0})
    assert [f["path"] for f in m["files"]] == [
        "results/figures/rpca/comparison.png",
        "results/rpca/comparison.tsv",
    ]
    entry = m["files"][1]
    assert entry["sha256"] == sha256(tmp_path / entry["path"]) and entry["bytes"] == 22
    assert m["measurements"] == [
        {"path": "results/benchmarks/rpca/time_per_sample.tsv", "kind": "tsv"}
    ]
    # another wall-clock value changes no byte of the manifest; another result does
    (tmp_path / "results/benchmarks/rpca/time_per_sample.tsv").write_text("mode\tms\nframe\t9\n")
    assert build_manifest(paths, {"seed": 0})["files"] == m["files"]
    (tmp_path / "results/rpca/comparison.tsv").write_text("mode\tnmse\nframe\t-12.6\n")
    assert build_manifest(paths, {"seed": 0})["files"] != m["files"]


def test_is_measurement():
    assert is_measurement("results/benchmarks/rpca_pcp_frame.tsv")
    assert not is_measurement("results/rpca/frame/pcp/metrics.tsv")
    assert not is_measurement("results/figures/benchmarks.png")


def test_manifest_is_written_only_for_a_complete_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = _files(tmp_path, {"results/a.tsv": "x\n"}) + ["results/missing.png"]
    out = tmp_path / "results/figures/all"
    with pytest.raises(FileNotFoundError, match="results/missing.png"):
        write_manifest(paths, {}, out)
    assert not out.exists()
    write_manifest(paths[:1], {"k": 1}, out)
    assert json.loads(out.read_text())["config"] == {"k": 1}
