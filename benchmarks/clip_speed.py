"""Task 2 speed: exact sparse concept codes vs scikit-learn, and CLIP image-embedding throughput.

Part 1, sparse coding. The instance stands in for seed 001's CIFAR-10 problem (10,000 aligned
image embeddings of dimension 512 over 1,003 aligned concept embeddings) without the data:
``deepunfold.clip.codes.synthetic_concept_instance`` builds 1,003 unit-norm "text" atoms
that share one large common direction, fall into 60 semantic clusters and carry an individual
part, all with a decaying spectrum like real embeddings; they are centred and renormalised as
in the seed's alignment. Signals are sparse non-negative mixes of 8 atoms plus a dense part of
twice their size, centred and renormalised. At lambda = 0.05 (seed scale,
``||z - Aw||^2 + lambda ||w||_1``) the exact codes have about 200 non-zeros per signal, as the
seed's (215).

The reference is scikit-learn's ``sparse_encode(algorithm="lasso_lars", alpha=lambda/2)``
(same minimiser: its objective is half ours). LARS is sequential per signal, so it is timed on
a random subset (``--sklearn-signals``) and its time per signal is scaled to the full set; the
objectives are compared on that subset, signal by signal. Our solver (``active_set``:
``deepunfold.solvers.lasso.lasso_active_set``; on the CPU its compiled per-signal active set
with the support's Cholesky factor updated in place, until every KKT violation is below 1e-9
lambda; ``--method batched`` times the batched torch path that GPUs run) runs on all
signals. Both are timed in the same run, on the same threads (use ``--threads 1``: LARS is
single-threaded per signal, and the machine is shared); the ratio of the times per
signal is printed for wall time and for CPU time (``process_time``), with the worst relative
objective difference (ours minus sklearn's; negative means ours is lower). On a shared, loaded
machine only ratios measured in the same run are comparable.

Sweep and convergence check (``--sweep-lams``, default every lambda of the pipeline's sweep
{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 5}; ``--sweep-signals`` signals, default all 10,000):
at each lambda, plain and non-negative, our solver (``deepunfold.solvers.lasso.
lasso_active_set(threads=1)``), then SPAMS (``spams.lasso(X, D=A, lambda1=lambda/2, mode=2,
numThreads=1)``, Mairal et al.'s LARS on the Gram matrix; ``pip install -e ".[bench]"``), one
after the other in the same process, and scikit-learn's lasso_lars on the first
``--sweep-sklearn-signals``. Both are warmed up on 100 signals first (Numba's cached kernels
load on first use); a row's time is the best of up to ``--sweep-repeats`` (3) runs for a
solver whose run takes under 2 s, else its one run. Printed per row: mean non-zeros, the
times per signal, the ratios (their time / ours: above 1 means ours is faster), the largest
KKT violation (units of lambda), how many codes reached the tolerance (1e-9 lambda) and the
largest relative objective difference against SPAMS (ours minus SPAMS; negative means ours is
lower). The script exits with status 1 if any code is left unconverged.

Threads (``--thread-counts``, default 1 2 4, at ``--thread-lams`` 0.05 and 0.01 on
``--thread-signals`` signals): wall time with the signals split across that many worker
threads (one BLAS thread each), and the largest relative objective difference from the
one-thread codes.

Part 2, embedding throughput. open_clip ``ViT-B-32-quickgelu`` with random weights (same
arithmetic as the OpenAI weights; nothing is downloaded) encodes batches of 224x224 images in
``inference_mode``; its FLOPs per image are counted by ``torch.utils.flop_counter`` and the
achieved rate is compared with a measured fp32 matrix product on the same threads.

    python benchmarks/clip_speed.py --threads 1            # full instance (about an hour)
    python benchmarks/clip_speed.py --signals 1000 --sklearn-signals 100 --threads 1 \
        --skip-embedding --sweep-signals 1000               # sparse coding only, quicker
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch


def sparse_coding(args) -> None:
    from sklearn.decomposition import sparse_encode

    from deepunfold.clip.codes import objective, sparse_code, synthetic_concept_instance

    lam = args.lam
    z, A = synthetic_concept_instance(args.signals, 512, 1003, seed=args.seed)
    gram = (A.T @ A).numpy()
    off = np.abs(gram - np.eye(len(gram)))
    print(
        f"instance: {z.shape[0]} signals x {z.shape[1]}, {A.shape[1]} unit-norm atoms; "
        f"mean |cos| between atoms {off.mean():.3f}, max {off.max():.3f}; "
        f"||A||_2^2 = {np.linalg.eigvalsh(gram).max():.1f}"
    )

    t0, c0 = time.perf_counter(), time.process_time()
    ours = sparse_code(z, A, lam, solver="active_set", chunk_size=args.chunk, method=args.method)
    t_ours, c_ours = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"active_set: {t_ours:.2f} s for {z.shape[0]} signals "
        f"({1e3 * t_ours / z.shape[0]:.2f} ms/signal), mean nnz "
        f"{ours.nnz.double().mean():.1f}, max KKT violation {ours.kkt.max():.2e} "
        f"(lambda {lam}), max relative duality gap {ours.gap.max():.2e}; {ours.info}"
    )

    rng = np.random.default_rng(args.seed)
    subset = np.sort(rng.choice(z.shape[0], min(args.sklearn_signals, z.shape[0]), replace=False))
    t0, c0 = time.perf_counter(), time.process_time()
    codes = sparse_encode(z[subset].numpy(), A.T.numpy(), algorithm="lasso_lars", alpha=lam / 2)
    t_sk, c_sk = time.perf_counter() - t0, time.process_time() - c0
    per_sk = t_sk / len(subset)
    f_sk = objective(z[subset], A, torch.from_numpy(codes), lam)
    f_ours = ours.objective[subset]
    rel = ((f_ours - f_sk) / f_sk).numpy()
    print(
        f"sklearn lasso_lars: {t_sk:.2f} s for {len(subset)} signals "
        f"({1e3 * per_sk:.2f} ms/signal), mean nnz {(codes != 0).sum(1).mean():.1f}"
    )
    print(
        f"objective (ours - sklearn) / sklearn on the subset: max {rel.max():.2e}, "
        f"min {rel.min():.2e}; within 1e-6: {bool(rel.max() <= 1e-6)}"
    )
    ratio = per_sk / (t_ours / z.shape[0])
    cpu_ratio = (c_sk / len(subset)) / (c_ours / z.shape[0])
    print(
        f"RATIO sparse coding: sklearn time / active_set time per signal = {ratio:.1f}x wall, "
        f"{cpu_ratio:.1f}x CPU time (process_time: all threads; {torch.get_num_threads()} "
        f"thread(s); sklearn timed on {len(subset)} of {z.shape[0]} signals, scaled per signal; "
        f"target >= 20x)"
    )


SWEEP = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0]


def best_time(run, run_args: tuple, repeats: int):
    """``(result, seconds)`` of ``run(*run_args)``: the best of up to ``repeats`` runs,
    repeating only while one run takes under 2 s (the fast rows, where the load of a shared
    machine is most of the noise)."""
    t0 = time.perf_counter()
    out = run(*run_args)
    best = time.perf_counter() - t0
    for _ in range(repeats - 1):
        if best >= 2.0:
            break
        t0 = time.perf_counter()
        run(*run_args)
        best = min(best, time.perf_counter() - t0)
    return out, best


def sweep(args) -> bool:
    """Every lambda of the sweep, plain and non-negative, on the same signals: our time, SPAMS'
    and lasso_lars' (on a subset), their ratios, and the convergence check of every code."""
    from sklearn.decomposition import sparse_encode

    from deepunfold.clip.codes import objective, synthetic_concept_instance
    from deepunfold.solvers.lasso import kkt_violation, lasso_active_set

    try:
        import spams
    except ImportError:  # pip install -e ".[bench]"
        spams = None
        print("SPAMS not installed (pip install -e '.[bench]'): no SPAMS column")
    z, A = synthetic_concept_instance(args.signals, 512, 1003, seed=args.seed)
    z = z[: args.sweep_signals]
    n = z.shape[0]
    X, D = np.asfortranarray(z.numpy().T), np.asfortranarray(A.numpy())
    n_sk = min(args.sweep_sklearn_signals, n)
    print(
        f"sweep: {n} signals, one thread each (ours: lasso_active_set(threads=1); SPAMS: "
        f"spams.lasso(mode=2, lambda1=lambda/2, numThreads=1); lasso_lars on the first {n_sk}); "
        "ratio = their time per signal / ours; converged = every code's KKT violation <= "
        "1e-9 lambda; obj = max (ours - SPAMS) / SPAMS"
    )
    head = (
        "| lambda | codes | mean nnz | ours ms/signal | SPAMS ms/signal | SPAMS / ours | "
        "lasso_lars ms/signal | lasso_lars / ours | max KKT / lambda | converged | obj vs SPAMS |"
    )
    rows, ok = [head, "|---" * 11 + "|"], True

    def ours(zs, lam, nonneg):
        return lasso_active_set(
            zs, A, lam, nonneg=nonneg, threads=1, on_unconverged="warn", method=args.method
        )

    def theirs(Xs, lam, nonneg):
        return spams.lasso(Xs, D=D, lambda1=lam / 2, mode=2, numThreads=1, pos=nonneg)

    # warm-up: the compiled kernels load from Numba's cache, both libraries touch their code
    ours(z[:100], args.sweep_lams[0], False)
    if spams is not None:
        theirs(np.asfortranarray(X[:, :100]), args.sweep_lams[0], False)
    for lam in args.sweep_lams:
        for nonneg in (False, True):
            (w, info), t_ours = best_time(ours, (z, lam, nonneg), args.sweep_repeats)
            t_ours /= n
            kkt = kkt_violation(z, A, w, lam, nonneg) / lam
            conv = int((kkt <= 1e-9).sum())
            ok &= conv == n
            f_ours = objective(z, A, w, lam)
            t_sp, rel_sp = math.nan, math.nan
            if spams is not None:
                W, t_sp = best_time(theirs, (X, lam, nonneg), args.sweep_repeats)
                t_sp /= n
                f_sp = objective(z, A, torch.from_numpy(W.toarray().T), lam)
                rel_sp = float(((f_ours - f_sp) / f_sp.clamp_min(1e-300)).max())
            t_sk = math.nan
            if n_sk:
                t0 = time.perf_counter()
                sparse_encode(
                    z[:n_sk].numpy(),
                    A.T.numpy(),
                    algorithm="lasso_lars",
                    alpha=lam / 2,
                    positive=nonneg,
                )
                t_sk = (time.perf_counter() - t0) / n_sk
            rows.append(
                f"| {lam:g} | {'non-negative' if nonneg else 'plain'} | "
                f"{float((w != 0).sum(-1).double().mean()):.1f} | {1e3 * t_ours:.3f} | "
                f"{1e3 * t_sp:.3f} | {t_sp / t_ours:.2f} | {1e3 * t_sk:.2f} | "
                f"{t_sk / t_ours:.1f} | {float(kkt.max()):.1e} | {conv}/{n} | {rel_sp:.1e} |"
            )
            print(rows[-1], f" {info}", flush=True)
    print("\n".join(rows))
    print(f"sweep: all codes converged at every lambda: {ok}")
    return ok


def thread_scaling(args) -> None:
    """Wall time of our solver at 1, 2 and 4 threads (signals split across worker threads,
    one BLAS thread each), with the codes compared to the one-thread run."""
    from deepunfold.clip.codes import objective, synthetic_concept_instance
    from deepunfold.solvers.lasso import lasso_active_set

    z, A = synthetic_concept_instance(args.signals, 512, 1003, seed=args.seed)
    z = z[: args.thread_signals]
    before = torch.get_num_threads()
    print(f"threads: {z.shape[0]} signals, {os.cpu_count()} CPUs here")
    print("| lambda | threads | wall s | ms/signal | speed-up vs 1 | max rel objective diff |")
    print("|---|---|---|---|---|---|")
    for lam in args.thread_lams:
        ref_t, ref_f = None, None
        for t in args.thread_counts:
            torch.set_num_threads(t)
            t0 = time.perf_counter()
            w, _ = lasso_active_set(z, A, lam, method=args.method)
            wall = time.perf_counter() - t0
            f = objective(z, A, w, lam)
            if ref_t is None:
                ref_t, ref_f = wall, f
            diff = float(((f - ref_f).abs() / ref_f).max())
            print(
                f"| {lam:g} | {t} | {wall:.2f} | {1e3 * wall / z.shape[0]:.2f} | "
                f"{ref_t / wall:.2f} | {diff:.1e} |",
                flush=True,
            )
    torch.set_num_threads(before)


def matmul_rate(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def embedding_throughput(args) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from deepunfold.clip.embed import load_model

    model, _, _ = load_model("ViT-B-32-quickgelu", None)
    x = torch.randn(args.batch, 3, 224, 224)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            model.encode_image(x[:1], normalize=True)
        flops_per_image = counter.get_total_flops()
        model.encode_image(x, normalize=True)  # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            model.encode_image(x, normalize=True)
            times.append(time.perf_counter() - t0)
    best = min(times)
    rate = args.batch / best
    achieved = rate * flops_per_image
    peak = matmul_rate()
    print(
        f"ViT-B-32-quickgelu image encoder: {flops_per_image / 1e9:.2f} GFLOP/image, "
        f"{rate:.1f} images/s (batch {args.batch}, best of {args.repeats}, "
        f"{torch.get_num_threads()} threads)"
    )
    print(
        f"achieved {achieved / 1e9:.1f} GFLOP/s; fp32 matmul (2048^3) {peak / 1e9:.1f} GFLOP/s; "
        f"RATIO embedding / matmul rate = {achieved / peak:.2f}"
    )
    print(f"=> 10,000 CIFAR-10 images take about {10_000 / rate / 60:.1f} min here")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--signals", type=int, default=10_000)
    p.add_argument("--sklearn-signals", type=int, default=300)
    p.add_argument("--lam", type=float, default=0.05)
    p.add_argument("--chunk", type=int, default=500)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--method",
        choices=["auto", "compiled", "batched"],
        default="auto",
        help="lasso_active_set's implementation (auto: compiled on the CPU)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-embedding", action="store_true")
    p.add_argument("--skip-lasso-lars", action="store_true", help="skip part 1's lasso_lars run")
    p.add_argument("--sweep-lams", type=float, nargs="*", default=SWEEP)
    p.add_argument("--sweep-signals", type=int, default=10_000)
    p.add_argument(
        "--sweep-repeats",
        type=int,
        default=3,
        help="best of up to this many runs per solver and row, for rows under 2 s a run",
    )
    p.add_argument("--sweep-sklearn-signals", type=int, default=20)
    p.add_argument("--thread-lams", type=float, nargs="*", default=[0.05, 0.01])
    p.add_argument("--thread-signals", type=int, default=1000)
    p.add_argument("--thread-counts", type=int, nargs="*", default=[1, 2, 4])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from threadpoolctl import threadpool_limits

    # NumPy's BLAS (used by lasso_lars, and by parts of our solver) gets the same threads
    with threadpool_limits(args.threads, user_api="blas"):
        if not args.skip_lasso_lars:
            sparse_coding(args)
        converged = True
        if args.sweep_signals > 0 and args.sweep_lams:
            converged = sweep(args)
        if args.thread_signals > 0 and args.thread_counts:
            thread_scaling(args)
        if not args.skip_embedding:
            embedding_throughput(args)
    if not converged:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
