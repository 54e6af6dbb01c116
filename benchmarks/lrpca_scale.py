"""LRPCA at scale: trained once on small problems, applied at growing sizes, against
AccAltProj and PCP, on one thread and on all cores, in one run.

The problems are the LRPCA paper's (Cai, Liu & Yin 2021): n x n, L = U V^T with Gaussian
factors, a fraction ``alpha`` of outliers uniform in [-E|L|, E|L|]. LRPCA is trained
layer-wise at ``--train-n`` (float64), then run, with the same parameters, at every size of
``--sizes`` at its trained depth K and at ``--deep`` layers (thresholds extrapolated past K).
AccAltProj (given the rank, as LRPCA) runs K iterations and to ``--tol`` (its relative
residual); PCP (inexact ALM, finds the rank) to ``--tol``, skipped above
``--skip-pcp-above``. Printed per size and thread count: seconds, relative errors of L and
S, the time ratios against LRPCA at K layers, and at the end the time's growth exponent
with n (slope of log time against log n) per method.

    python benchmarks/lrpca_scale.py --sizes 500 1000 2000 3000 --threads 1 2
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch

from deepunfold.solvers.accaltproj import accaltproj
from deepunfold.solvers.pcp import pcp
from deepunfold.unfolded.lrpca import LRPCA, relative_error, synthetic_problems, train_lrpca


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 3000])
    ap.add_argument("--rank", type=int, default=5)
    ap.add_argument("--alpha", type=float, default=0.1, help="outlier fraction")
    ap.add_argument("--train-n", type=int, default=200, help="training size")
    ap.add_argument("--layers", type=int, default=10, help="trained layers K")
    ap.add_argument(
        "--steps", type=int, default=12, help="steps per layer-wise and fine-tuning phase"
    )
    ap.add_argument("--deep", type=int, default=30, help="layers of the deep LRPCA run")
    ap.add_argument("--tol", type=float, default=1e-7, help="AccAltProj's and PCP's tolerance")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    ap.add_argument("--skip-pcp-above", type=int, default=10**9, help="no PCP above this n")
    ap.add_argument("--repeats", type=int, default=1, help="timing runs (best of)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    r, a = args.rank, args.alpha

    torch.set_num_threads(1)

    def problems(b, n, seed):
        g = torch.Generator().manual_seed(seed)
        return synthetic_problems(b, n, r, a, generator=g)

    model = LRPCA(args.layers, threshold_decay=0.4)
    val = problems(2, args.train_n, args.seed + 1)
    t_train, _ = timed(
        lambda: train_lrpca(
            model,
            lambda s: problems(1, args.train_n, args.seed + 1000 + s),
            val,
            r,
            layer_steps=args.steps,
            finetune_steps=args.steps,
            lr=0.05,
        )
    )
    model.eval()
    k = args.layers
    print(
        f"LRPCA trained at n = {args.train_n}, rank {r}, {a:.0%} outliers, K = {k} layers, "
        f"{args.steps}+{args.steps} steps per stage: {t_train:.1f} s on one thread"
    )
    print(
        f"float64; AccAltProj and PCP to relative residual {args.tol:g}; "
        f"LRPCA and AccAltProj given the rank; torch {torch.__version__}"
    )

    rows = []
    for n in args.sizes:
        y, low, sparse = problems(1, n, args.seed + 7 + n)
        for threads in args.threads:
            torch.set_num_threads(threads)
            runs = _runs(model, y, r, k, args, pcp_too=n <= args.skip_pcp_above)
            for name, fn in runs.items():
                try:
                    with torch.no_grad():
                        sec, (lh, sh, iters) = timed(fn)
                        for _ in range(args.repeats - 1):
                            sec = min(sec, timed(fn)[0])
                except (RuntimeError, MemoryError) as err:  # out of memory
                    print(f"n = {n}, {threads} threads, {name}: failed ({err})", flush=True)
                    continue
                row = dict(
                    n=n,
                    threads=threads,
                    method=name,
                    seconds=sec,
                    iters=iters,
                    err_l=float(relative_error(lh, low).max()),
                    err_s=float(relative_error(sh, sparse).max()),
                )
                rows.append(row)
                el, es = row["err_l"], row["err_s"]
                print(
                    f"n = {n:5d}  {threads:2d} thr  {name:20s} {sec:9.3f} s  iters {iters:>4}  "
                    f"err L {el:.2e}  err S {es:.2e}",
                    flush=True,
                )
        torch.set_num_threads(1)

    print("\ntime ratios against LRPCA at its trained depth (same size and threads):")
    for n in args.sizes:
        for threads in args.threads:
            sel = {x["method"]: x for x in rows if x["n"] == n and x["threads"] == threads}
            ref = sel.get(f"LRPCA K={k}")
            if ref is None:
                continue
            parts = [
                f"{name} {x['seconds'] / ref['seconds']:.1f}x"
                for name, x in sel.items()
                if x is not ref
            ]
            print(f"  n = {n:5d}, {threads} threads: " + ", ".join(parts))
    print("\ntime growth with n (slope of log seconds against log n; n^2 is 2):")
    for threads in args.threads:
        for name in dict.fromkeys(x["method"] for x in rows):
            pts = [
                (x["n"], x["seconds"])
                for x in rows
                if x["method"] == name and x["threads"] == threads
            ]
            if len(pts) >= 2:
                lx = [math.log(p[0]) for p in pts]
                ly = [math.log(p[1]) for p in pts]
                mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
                slope = sum((u - mx) * (v - my) for u, v in zip(lx, ly, strict=True)) / sum(
                    (u - mx) ** 2 for u in lx
                )
                print(
                    f"  {threads} threads, {name:20s}: n^{slope:.2f} over n = "
                    f"{pts[0][0]}..{pts[-1][0]}"
                )


def _runs(model, y, r, k, args, pcp_too):
    """name -> a function returning (L, S, iterations) on ``y``."""
    runs = {
        f"LRPCA K={k}": lambda: (*model(y, r), k),
        f"LRPCA K={args.deep}": lambda: (*model(y, r, args.deep), args.deep),
        f"AccAltProj iter={k}": lambda: _acc(accaltproj(y, r, tol=0.0, max_iter=k)),
        "AccAltProj to tol": lambda: _acc(accaltproj(y, r, tol=args.tol, max_iter=200)),
    }
    if pcp_too:
        runs["PCP to tol"] = lambda: _pcp(pcp(y, tol=args.tol, max_iter=1000))
    return runs


def _acc(res):
    return res.low, res.sparse, int(res.iterations.max())


def _pcp(res):
    return res.low_rank, res.sparse, int(res.iterations.max())


if __name__ == "__main__":
    main()
