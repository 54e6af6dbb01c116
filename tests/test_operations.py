"""Operations: reruns do exactly what changed, killed jobs and reports, reproducibility."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from helpers import DEMO, clone_run, copy_workflow, dry_run_jobs, patch_config, snakemake

pytestmark = pytest.mark.pipeline


@pytest.fixture
def done(demo_run, tmp_path):
    """A private copy of the finished demo run, free to be modified."""
    return clone_run(demo_run[0], tmp_path / "run")


def test_complete_run_has_nothing_to_do(done):
    assert dry_run_jobs(done) == {}


def test_editing_a_script_reruns_its_rule(done):
    script = done / "workflow/scripts/robust_breakdown.py"
    script.write_text(script.read_text() + "\n# an edit\n")
    assert dry_run_jobs(done) == {"robust_breakdown": 1, "figures_manifest": 1}


def test_editing_library_code_reruns_its_users(done):
    module = done / "src/deepunfold/figures/robust.py"
    module.write_text(module.read_text() + "\n# an edit\n")
    jobs = dry_run_jobs(done)
    assert jobs == {"robust_estimates": 1, "robust_breakdown": 1, "figures_manifest": 1}


def test_resaving_inputs_with_same_content_reruns_nothing(done):
    time.sleep(1.1)  # make sure the new mtimes are strictly newer
    for rel in [
        "src/deepunfold/studies/robust_location.py",
        "config/demo.yaml",
        "config/config.yaml",
    ]:
        path = done / rel
        path.write_bytes(path.read_bytes())
    assert dry_run_jobs(done) == {}


def test_changing_a_setting_reruns_only_its_stage(done):
    patch_config(done, {"robust": {"breakdown": {"n_trials": 7}}})
    jobs = dry_run_jobs(done)
    assert jobs == {"robust_breakdown": 1, "figures_manifest": 1}


def test_killed_job_leaves_nothing_mistaken_for_a_result(tmp_path):
    """SIGKILL the whole run mid-job: no output appears complete; the next run redoes it."""
    wd = copy_workflow(tmp_path / "wf")
    patch_config(wd, {"robust": {"breakdown": {"n_trials": 200_000}}})
    target = "results/robust/breakdown_count.tsv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", target, "--cores", "1", *DEMO[2:]],
        cwd=wd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    log = wd / "logs/robust/breakdown.log"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and log.stat().st_size > 0):
        time.sleep(0.2)
    # the job is now inside its script (the log is written at its start)
    time.sleep(2.0)
    assert proc.poll() is None, "the job finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for name in ["breakdown_count.tsv", "breakdown_magnitude.tsv"]:
        assert not (wd / "results/robust" / name).exists()
    out = snakemake(wd, target, *DEMO, "--dry-run").stdout
    assert "robust_breakdown" in out
    assert "Missing output files" in out or "Incomplete output files" in out


def test_report_builds_with_every_figure(done):
    report = done / "report.html"
    snakemake(done, "--report", str(report), *DEMO)
    html = report.read_text(errors="replace")
    assert report.stat().st_size > 10_000
    manifest = json.loads((done / "results/figures/all").read_text())
    for entry in manifest["files"]:
        if entry["path"].endswith(".png"):
            assert os.path.basename(entry["path"]) in html, entry["path"]
    assert "Task 1" in html


def test_manifest_records_config_and_versions(demo_run):
    manifest = json.loads((demo_run[0] / "results/figures/all").read_text())
    assert manifest["config"]["run_label"] == "offline demo"
    for pkg in ["torch", "numpy", "snakemake", "deepunfold"]:
        assert manifest["versions"][pkg] not in ("", "not installed")


def test_two_clean_runs_are_identical(demo_run, tmp_path):
    """A second clean run gives byte-identical figures and tables: the same manifest.

    Wall-clock measurements live under results/benchmarks/ only; the manifest lists them
    without hashes, and nothing else may differ.
    """
    first = json.loads((demo_run[0] / "results/figures/all").read_text())
    wd = copy_workflow(tmp_path / "second")
    snakemake(wd, "results/figures/all", *DEMO)
    second = json.loads((wd / "results/figures/all").read_text())
    hashes = [{f["path"]: f["sha256"] for f in m["files"]} for m in (first, second)]
    differ = sorted(
        p for p in hashes[0].keys() | hashes[1].keys() if hashes[0].get(p) != hashes[1].get(p)
    )
    assert not differ, f"files that differ between two clean runs: {differ}"
    assert second == first
    # the time per sample is measured (and listed) but is no part of any result file
    assert {m["path"] for m in first["measurements"]} >= {
        "results/benchmarks/rpca/time_per_sample.tsv",
        "results/benchmarks/rpca/time_per_sample.png",
    }
    for entry in first["files"]:
        if entry["path"].endswith(".tsv"):
            header = (demo_run[0] / entry["path"]).read_text().split("\n", 1)[0]
            assert not re.search(r"time|seconds", header), (entry["path"], header)
