"""End-to-end: the demo DAG builds from scratch, the manifest is complete, reruns are no-ops."""

import json

import pytest
from helpers import DEMO, copy_workflow, job_counts, snakemake

pytestmark = pytest.mark.pipeline


def test_demo_builds_manifest(demo_run):
    wd, _ = demo_run
    manifest = json.loads((wd / "results/figures/all").read_text())
    paths = {f["path"] for f in manifest["files"]}
    for name in ["estimates", "loss_curves", "breakdown"]:
        for ext in ["png", "pdf"]:
            assert f"results/figures/robust/{name}.{ext}" in paths
    for entry in manifest["files"]:
        f = wd / entry["path"]
        assert f.stat().st_size == entry["bytes"] > 0
    assert manifest["config"]["run_label"] == "offline demo"
    assert "torch" in manifest["versions"]
    # the device of every PyTorch job, from its log's "device: " line (docs/gpu.md)
    devices = manifest["devices"]
    assert any(p.startswith("logs/lista/") for p in devices), sorted(devices)
    assert all(v.startswith(("cpu (", "cuda (")) for v in devices.values()), devices
    est = (wd / "results/robust/estimates.tsv").read_text()
    assert "l2\t1.833333333" in est


def test_second_dry_run_has_nothing_to_do(demo_run):
    wd, _ = demo_run
    proc = snakemake(wd, *DEMO, "--dry-run", "results/figures/all")
    assert "Nothing to be done" in proc.stdout, proc.stdout[-3000:]


def test_dry_run_job_count(tmp_path):
    """The DAG has the expected jobs for the enabled stages (one per figure rule + manifest)."""
    wd = copy_workflow(tmp_path / "wf")
    proc = snakemake(wd, *DEMO, "--dry-run", "results/figures/all")
    counts = job_counts(proc.stdout)
    assert counts["robust_estimates"] == counts["robust_breakdown"] == 1
    assert counts["figures_manifest"] == 1
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


@pytest.mark.parametrize(
    "override, key",
    [
        ("robust={'grid_points': -3}", "robust.grid_points"),
        ("seed=-4", "seed"),
        ("robust={'unknown_key': 1}", "robust.unknown_key"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, override, key):
    wd = copy_workflow(tmp_path / "wf")
    proc = snakemake(wd, "results/figures/all", *DEMO, "--config", override, check=False)
    assert proc.returncode != 0
    assert f"'{key}'" in proc.stdout, proc.stdout[-3000:]
    assert not (wd / "results").exists()
