"""Helpers the tests share (imported as ``from helpers import ...``; tests/ is on pytest's
``pythonpath``): an isolated copy of the workflow, Snakemake runs and their job tables, and
config patches. Fixtures live in conftest.py."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from deepunfold.pipeline.config import merge_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
WORKFLOW_FILES = ["Snakefile", "workflow", "config", "src"]
DEMO = ("--cores", "2", "--configfile=config/demo.yaml")


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (not results) into ``dest`` so a test runs in isolation."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 3000):
    """Run Snakemake in ``workdir``; returns the CompletedProcess (stdout+stderr merged)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-8000:]}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """Parse the "Job stats" table of a (dry) run into {rule: count}."""
    counts, inside = {}, False
    for line in output.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            inside = True
            continue
        if inside:
            if len(parts) != 2 or not parts[1].isdigit():
                if counts:
                    break
                continue
            counts[parts[0]] = int(parts[1])
    return counts


def clone_run(src: Path, dest: Path) -> Path:
    """Copy a finished run (workflow, results and Snakemake's metadata, mtimes kept)."""
    shutil.copytree(src, dest, symlinks=True)
    return dest


def patch_config(workdir: Path, patch: dict, name: str = "config/demo.yaml") -> None:
    """Deep-update a config file of a copied workflow, as a user editing it would."""
    path = workdir / name
    cfg = yaml.safe_load(path.read_text()) or {}
    merge_config(cfg, patch)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def dry_run_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """{rule: count} of what a dry run of the demo would execute ({} if nothing)."""
    proc = snakemake(workdir, "results/figures/all", *DEMO, "--dry-run", *args)
    if "Nothing to be done" in proc.stdout:
        return {}
    counts = job_counts(proc.stdout)
    counts.pop("total", None)
    return counts
