"""Task 6 speed/quality ratios, measured in one run (printed, never asserted).

    python benchmarks/multilayer_quality.py                  # defaults of the full study
    python benchmarks/multilayer_quality.py --signals 100    # quicker

1. Pursuits on the multi-layer model (``multilayer.model`` / ``multilayer.pursuits`` of
   config/config.yaml): iterations of ML-ISTA, ML-FISTA and layered BP to bring the objective
   of (P) within 1e-2 and 1e-3 (relative) of its minimum F*, and the ML-ISTA / ML-FISTA
   ratio (the task-6 slides' point: momentum pays); final relative errors of gamma_1, gamma_2.
2. Coherence experiment: for each dictionary, the largest sparsity where BP (FISTA) and OMP
   recover >= 95 % of supports, as a multiple of the coherence bound (the bound is sufficient,
   not tight), and the wall time of our batched FISTA against scikit-learn's OMP on the same
   signals.
3. ML-ISTA net: cost of a forward pass with k unfoldings relative to the feed-forward pass
   (k = 0) on an MNIST-sized batch, the price of the recurrence at equal parameters.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from deepunfold.data.multilayer_signals import generate_signals, make_multilayer_dictionaries
from deepunfold.pipeline.config import resolve_config
from deepunfold.solvers.multilayer import default_steps, layered_basis_pursuit, ml_fista, ml_ista
from deepunfold.studies.coherence import (
    coherence_bound,
    make_dictionary,
    mutual_coherence,
    recovery_experiment,
)
from deepunfold.unfolded.mlista import MLISTANet

ROOT = Path(__file__).resolve().parents[1]


def first_below(gap: torch.Tensor, level: float):
    idx = (gap <= level).nonzero()
    return int(idx[0]) if len(idx) else None


def pursuits(cfg, n_signals: int, n_iter: int) -> None:
    m, p = cfg["model"], cfg["pursuits"]
    Ds = make_multilayer_dictionaries(m["dims"], m["atom_nnz"], seed=0)
    sig = generate_signals(
        Ds,
        n_signals,
        m["sparsity"],
        noise_std=p["noise_std"],
        amplitude=tuple(m["amplitude"]),
        seed=1,
    )
    lams = p["lambdas"]
    steps = default_steps(Ds)  # once, outside the timings
    runs, seconds = {}, {}
    for name, f in [
        ("ML-ISTA", ml_ista),
        ("ML-FISTA", ml_fista),
        ("layered BP", layered_basis_pursuit),
    ]:
        t = time.perf_counter()
        runs[name] = f(sig.y, Ds, lams, n_iter, steps=steps, reference=sig.gammas)
        seconds[name] = time.perf_counter() - t
    f_star = (
        ml_fista(sig.y, Ds, lams, 4 * n_iter, steps=steps).history["objective"].min(0).values.mean()
    )
    print(
        f"\n1. pursuits: dims {m['dims']}, {n_signals} signals, noise {p['noise_std']}, "
        f"lambdas {lams}, F* = {float(f_star):.6g}"
    )
    its = {}
    for name, r in runs.items():
        gap = (r.history["objective"].mean(1) - f_star) / f_star.abs()
        its[name] = [first_below(gap, lv) for lv in (1e-2, 1e-3)]
        e1, e2 = (float(r.history[f"rel_error_{i}"][-1].mean()) for i in (1, 2))
        print(
            f"   {name:11s} iterations to gap 1e-2 / 1e-3: {its[name][0]} / {its[name][1]};"
            f" final rel. error g1 {e1:.4f}, g2 {e2:.4f}; {1e3 * seconds[name] / n_iter:.2f}"
            " ms/iteration"
        )
    for j, lv in enumerate(("1e-2", "1e-3")):
        a, b = its["ML-ISTA"][j], its["ML-FISTA"][j]
        ratio = f"{a / b:.1f}x" if a and b else f"> {n_iter / b:.1f}x" if b else "n/a"
        print(f"   ML-ISTA / ML-FISTA iterations to gap {lv}: {ratio}")


def coherence(cfg, n_trials: int) -> None:
    c = cfg["coherence"]
    n = c["signal_dim"]
    print(f"\n2. coherence: n = {n}, {n_trials} trials per level")
    for kind in c["dictionaries"]:
        D = make_dictionary(kind, n, c["gaussian_atoms"], seed=0)
        mu = mutual_coherence(D)
        bound = coherence_bound(mu)
        levels = list(range(1, c["max_sparsity"] + 1))
        t = time.perf_counter()
        table = recovery_experiment(
            D,
            levels,
            n_trials,
            lam=c["bp_lambda"],
            max_iter=c["bp_max_iter"],
            tol=c["bp_tol"],
            support_rtol=c["support_rtol"],
            seed=1,
        )
        total = time.perf_counter() - t
        # time OMP alone on the same problem sizes to split the wall time
        t = time.perf_counter()
        recovery_experiment(
            D,
            levels,
            n_trials,
            lam=c["bp_lambda"],
            max_iter=1,
            tol=0.0,
            support_rtol=c["support_rtol"],
            seed=1,
        )
        omp_time = time.perf_counter() - t
        line = []
        for method in ("BP (FISTA)", "OMP"):
            rows = table[(table.method == method) & (table.recovery_rate >= 0.95)]
            s = int(rows.sparsity.max()) if len(rows) else 0
            line.append(f"{method} {s} ({s / bound:.1f}x bound)")
        print(
            f"   {kind:18s} mu {mu:.4f}, bound {bound:.2f}; largest sparsity with >= 95 %: "
            + ", ".join(line)
            + f"; time BP (FISTA) / OMP: {(total - omp_time) / omp_time:.2f}"
        )


def network_cost(cfg) -> None:
    net = cfg["network"]
    torch.set_num_threads(1)
    x = torch.randn(256, 1, 28, 28)
    print("\n3. ML-ISTA net (full-study architecture, batch 256 of 28x28, one thread):")
    base = None
    for k in net["unfoldings"]:
        model = MLISTANet(
            (1, 28, 28),
            net["channels"],
            net["kernel_sizes"],
            net["strides"],
            net["paddings"],
            unfoldings=k,
        )
        times = []
        with torch.inference_mode():
            for _ in range(6):  # the fastest of six: the machine is shared
                t = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t)
        sec = min(times[1:])
        base = base or sec
        print(f"   k = {k}: {1e3 * sec:7.1f} ms per batch, {sec / base:4.1f}x feed-forward")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--config",
        action="append",
        default=[],
        help="config file(s) merged over config/config.yaml, e.g. config/demo.yaml",
    )
    ap.add_argument("--signals", type=int, default=None, help="signals of the pursuit runs")
    ap.add_argument("--iters", type=int, default=None, help="pursuit iterations")
    ap.add_argument("--trials", type=int, default=100, help="trials per sparsity level")
    args = ap.parse_args()
    cfg = resolve_config(ROOT / "config/config.yaml", *args.config)["multilayer"]
    torch.set_num_threads(1)
    pursuits(
        cfg, args.signals or cfg["pursuits"]["n_signals"], args.iters or cfg["pursuits"]["n_iter"]
    )
    coherence(cfg, args.trials)
    network_cost(cfg)


if __name__ == "__main__":
    main()
