"""Tasks 4/5: the RPCA quality-vs-time frontier, measured in one run on this CPU.

Reads the test split and the trained checkpoints of a finished pipeline run (the
``rpca_train`` / ``rpca_train_depth`` / ``rpca_lrpca_train`` jobs), then times, on one thread
and alternately in this one process, PCP (inexact ALM) and AccAltProj (given the true rank)
at their ladders of iteration counts, the untrained ISTA-RPCA and the learned unfolded RPCA
at every depth K of ``rpca.frontier.depths``, and LRPCA (given the true rank; the model of
the arrangement) at every depth of ``rpca.lrpca.depths``. It prints each point, the budget
table (each method's best NMSE of S within 1x, 2x and 5x the learned reference model's time;
each method's time to reach the reference's quality, or never) and plain sentences saying
where the learned model is and is not on the frontier. The pipeline's ``rpca_frontier`` rule
writes the same under ``results/benchmarks/rpca/frontier/``; this script repeats it with
more timing rounds.

    snakemake --workflow-profile workflow/profiles/demo \
        results/benchmarks/rpca/frontier/frame_l1.tsv
    python benchmarks/rpca_frontier.py --configfile config/demo.yaml --repeats 5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from deepunfold.data.moving_digits import load_split
from deepunfold.pipeline.config import resolve_config
from deepunfold.studies.rpca_frontier import (
    LEARNED,
    budget_table,
    describe,
    measure,
    study_points,
)
from deepunfold.train.checkpoint import load_model
from deepunfold.unfolded.lrpca import LRPCA
from deepunfold.unfolded.rpca import UnfoldedRPCA, as_samples

ROOT = Path(__file__).resolve().parents[1]


def checkpoint(run: Path, mode, prox, k, main, kind):
    base = run / "results/rpca" / mode / prox
    path = base / f"{kind}.pt" if k == main else base / f"K{k}" / f"{kind}.pt"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run the pipeline's rpca_frontier targets first")
    return load_model(path, UnfoldedRPCA)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configfile", nargs="*", default=[], help="as given to snakemake")
    ap.add_argument("--run-dir", type=Path, default=ROOT, help="the finished pipeline run")
    ap.add_argument("--repeats", type=int, default=3, help="timing rounds (best of)")
    ap.add_argument("--modes", nargs="+", default=None)
    ap.add_argument("--proxes", nargs="+", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    c = resolve_config(ROOT / "config/config.yaml", *args.configfile)["rpca"]
    f, main_depth = c["frontier"], c["model"]["n_layers"]
    frames = c["train"]["batch_frames"]
    test = load_split(args.run_dir / "results/rpca/data/test.npz")
    print(
        f"digits: {c['data']['digits']}; test sequences: {len(test.x)}; depths {f['depths']}; "
        f"one thread; best of {args.repeats} alternating rounds"
    )
    for mode in args.modes or c["modes"]:
        batch = frames if mode == "frame" else max(1, frames // c["data"]["n_frames"])
        x, low, sparse = (as_samples(a, mode) for a in (test.x, test.low_rank, test.sparse))
        lrpca = None
        if c["lrpca"]["enabled"]:
            path = args.run_dir / "results/rpca/lrpca" / mode / "model.pt"
            if not path.is_file():
                raise SystemExit(f"{path} is missing: run the pipeline's rpca_frontier targets")
            lrpca = load_model(path, LRPCA)
        for prox in args.proxes or c["variants"]:
            models = {
                kind: {
                    k: checkpoint(args.run_dir, mode, prox, k, main_depth, kind)
                    for k in f["depths"]
                }
                for kind in ("model", "untrained")
            }
            points = study_points(
                models["model"],
                models["untrained"],
                mode,
                batch,
                pcp_iterations=f["pcp_iterations"],
                accaltproj_iterations=f["accaltproj_iterations"],
                rank=c["data"]["rank"],
                pcp_tol=c["pcp"]["tol"],
                svt_method=c["pcp"]["svt"],
                lrpca=lrpca,
                lrpca_depths=c["lrpca"]["depths"],
            )
            table = measure(points, x, low, sparse, repeats=args.repeats)
            reference = (LEARNED, f"K={main_depth}")
            budgets = budget_table(table, reference)
            print(f"\n== {mode} / {prox} ==")
            print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
            print(budgets.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
            print("\n".join(describe(table, budgets, reference)), flush=True)


if __name__ == "__main__":
    main()
