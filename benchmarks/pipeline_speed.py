"""Pipeline speed: the demo DAG from a clean tree, and a no-op dry run on a complete tree.

    python benchmarks/pipeline_speed.py [--cores 2] [--keep DIR]

Copies the workflow (Snakefile, profiles/, workflow/, config/, src/) into a scratch
directory, builds `results/figures/all` with the offline demo configuration from nothing,
then times a dry run of the same target on the complete tree (best of three), which must
report nothing to do. Prints wall times and the no-op dry run's ratio to its 5 s target.
Per-rule times come from the rules' `benchmark:` files.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEMO = ["--configfile=config/demo.yaml"]
TARGET_NOOP_S = 5.0


def run(workdir: Path, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "results/figures/all", *DEMO, *args],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-5000:]}")
    return elapsed, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="build here and keep the tree (default: a temp dir)")
    args = ap.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="deepunfold-bench-"))
    if workdir.exists() and any(workdir.iterdir()):
        sys.exit(f"{workdir} is not empty: the benchmark needs a clean tree")
    for name in ["Snakefile", "profiles", "workflow", "config", "src"]:
        src = ROOT / name
        copy = shutil.copytree if src.is_dir() else shutil.copy2
        copy(src, workdir / name)

    full, _ = run(workdir, "--cores", str(args.cores))
    noop = []
    for _ in range(3):
        t, out = run(workdir, "--cores", str(args.cores), "--dry-run")
        if "Nothing to be done" not in out:
            sys.exit(f"the dry run after a complete build still had work to do:\n{out[-3000:]}")
        noop.append(t)

    rows = []
    for f in sorted((workdir / "results/benchmarks").glob("*.tsv")):
        b = pd.read_csv(f, sep="\t")
        rows.append(
            {
                "rule job": f.stem,
                "wall s": float(b["s"].iloc[0]),
                "max RSS MB": float(b["max_rss"].iloc[0]),
            }
        )
    if rows:
        print(pd.DataFrame(rows).sort_values("wall s", ascending=False).to_string(index=False))
    print(f"\ndemo DAG from a clean tree on {args.cores} cores: {full:.1f} s")
    best = min(noop)
    print(
        f"no-op dry run on the complete tree: {best:.2f} s (best of 3; target < "
        f"{TARGET_NOOP_S} s, ratio {best / TARGET_NOOP_S:.2f} of the target)"
    )
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
