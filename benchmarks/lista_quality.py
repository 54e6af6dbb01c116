"""Task 3 quality targets, measured on the outputs of a pipeline run (printed, never asserted).

    python benchmarks/lista_quality.py                       # after the full study
    python benchmarks/lista_quality.py --rerun-demo          # also: two demo runs, same bytes?

Targets (issue 3, item 5):

1. SNR 40 dB, 16 layers: the best learned model reaches -38 dB test NMSE or lower (a public
   gated-LISTA log reaches about -39 dB).
2. Noiseless: the best 16-layer learned model beats FISTA at 16 iterations by >= 30 dB, and
   how many FISTA iterations match it (FISTA re-run on the stored test set for a grid of
   lambda, up to ``--fista-iters``; the smallest count over the grid is reported).
3. Determinism: training twice with the same seed gives bit-identical weights (in-process,
   on the stored standard-setting data); with ``--rerun-demo``, the whole task 3 demo stage
   run twice from scratch in two copies of the workflow gives identical weights, tables and
   figure bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from deepunfold.data.sparse_signals import load_problem, make_problem
from deepunfold.pipeline.config import resolve_config
from deepunfold.pipeline.io import read_table
from deepunfold.unfolded.lista import (
    TrainConfig,
    build_model,
    iterations_to_reach,
    solver_curve,
    train_layerwise,
)

ROOT = Path(__file__).resolve().parents[1]
TARGET_SNR40_DB = -38.0
TARGET_MARGIN_DB = 30.0


def best_learned(results: Path, setting: str, depth: int | None):
    """(model, NMSE dB) of the best learned model at ``depth`` layers (its deepest if None)."""
    best = None
    for path in sorted((results / setting).glob("*_layers.tsv")):
        t = read_table(path)
        row = t[t.layer == (depth or t.layer.max())]
        if row.empty:
            continue
        cand = (path.name.removesuffix("_layers.tsv"), float(row.test_nmse_db.iloc[0]))
        if best is None or cand[1] < best[1]:
            best = cand
    return best


def check_snr40(results: Path, setting: str, depth: int) -> None:
    print(f"\n[1] setting '{setting}': best learned model at {depth} layers")
    best = best_learned(results, setting, depth)
    if best is None:
        print(f"    no trained {depth}-layer model under {results / setting}: run the study first")
        return
    name, nmse = best
    verdict = "MET" if nmse <= TARGET_SNR40_DB else "NOT MET"
    print(f"    {name}: {nmse:.2f} dB   target <= {TARGET_SNR40_DB:.0f} dB   {verdict}")
    print(f"    ratio of error energies to the target: {10 ** ((nmse - TARGET_SNR40_DB) / 10):.3f}")


def check_noiseless(results: Path, setting: str, depth: int, lams, fista_iters: int) -> None:
    print(f"\n[2] setting '{setting}': best learned model at {depth} layers against FISTA")
    best = best_learned(results, setting, depth)
    base_path = results / setting / "baselines.tsv"
    if best is None or not base_path.exists():
        print(f"    missing outputs under {results / setting}: run the study first")
        return
    name, nmse = best
    base = read_table(base_path)
    lams = sorted({*lams, float(base.lam.iloc[0])}, reverse=True)
    problem = load_problem(results / "data" / f"{setting}.npz")
    x, z = problem.split("test")
    print(f"    {name}: {nmse:.2f} dB on {len(x)} test pairs")
    print(f"    FISTA on the same pairs, {fista_iters} iterations per lambda:")
    at_depth, found = {}, []
    for lam in lams:
        t0 = time.perf_counter()
        curve = solver_curve(x, z, problem.A, lam, fista_iters, accelerated=True)
        at_depth[lam] = float(curve.nmse_db.iloc[depth - 1])
        k = iterations_to_reach(curve, nmse)
        reach = f"reaches it after {k} iterations" if k else "never reaches it"
        took = time.perf_counter() - t0
        print(
            f"      lambda {lam:<7g} {depth} it.: {at_depth[lam]:7.2f} dB; best "
            f"{curve.nmse_db.min():7.2f} dB; {reach}   [{took:.0f} s]"
        )
        if k:
            found.append(k)
    best_lam = min(at_depth, key=at_depth.get)
    f16 = at_depth[best_lam]
    margin = f16 - nmse
    verdict = "MET" if margin >= TARGET_MARGIN_DB else "NOT MET"
    print(f"    FISTA at {depth} iterations, best lambda ({best_lam:g}): {f16:.2f} dB")
    print(f"    margin {margin:.2f} dB   target >= {TARGET_MARGIN_DB:.0f} dB   {verdict}")
    if found:
        print(
            f"    => FISTA needs {min(found)} iterations to match ({min(found) / depth:.0f}x "
            "the layers), best over the lambda grid"
        )
    else:
        print(f"    => FISTA does not match it within {fista_iters} iterations for any lambda")


def check_determinism_inprocess(results: Path, setting: str) -> None:
    print("\n[3a] determinism: the same training twice in one process")
    path = results / "data" / f"{setting}.npz"
    if path.exists():
        problem = load_problem(path)
        source = str(path)
    else:
        problem = make_problem(
            m=250, n=500, sparsity=0.9, snr_db=40, n_train=3000, n_val=300, n_test=300, seed=0
        )
        source = "a generated 250x500 problem"
    cfg = TrainConfig(max_steps=100, val_every=25, patience=2, seed=11)
    states = []
    for name in ("lista_cp", "alista"):
        for _ in range(2):
            model = build_model(name, problem.A, 3, lam=0.4, support_selection=name == "alista")
            torch.manual_seed(len(states))  # global state must not matter
            train_layerwise(model, problem.split("train"), problem.split("val"), cfg)
            states.append((name, model.state_dict()))
    for i in (0, 2):
        (name, a), (_, b) = states[i], states[i + 1]
        same = all(torch.equal(a[k], b[k]) for k in a)
        diff = max(float((a[k] - b[k]).abs().max()) for k in a)
        verdict = "IDENTICAL" if same else "DIFFERENT"
        print(f"    {name}, 3 layers on {source}: {verdict} weights (max |diff| {diff:.3g})")


def _digest(path: Path) -> str:
    if path.suffix == ".pt":
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        h = hashlib.sha256()
        for k in sorted(state):
            h.update(k.encode())
            h.update(state[k].numpy().tobytes())
        return "weights:" + h.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_determinism_rerun(cores: int) -> None:
    print("\n[3b] determinism: the task 3 demo stage run twice from scratch")
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import copy_workflow

    settings = resolve_config(ROOT / "config/config.yaml")["lista"]["settings"]
    targets = ["results/lista/parameters.tsv", "results/figures/lista/ista_losses.png"] + [
        f"results/figures/lista/{s}/training.png" for s in settings
    ]
    with tempfile.TemporaryDirectory() as tmp:
        digests, walls = [], []
        for run in ("a", "b"):
            wd = copy_workflow(Path(tmp) / run)
            t0 = time.perf_counter()
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "snakemake",
                    "--cores",
                    str(cores),
                    "--configfile=config/demo.yaml",
                    *targets,
                ],
                cwd=wd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            walls.append(time.perf_counter() - t0)
            if proc.returncode:
                print(proc.stdout[-3000:])
                print("    demo run failed")
                return
            files = sorted(
                p
                for d in ("results/lista", "results/figures/lista")
                for p in (wd / d).rglob("*")
                if p.is_file() and p.suffix != ".npz"
            )
            digests.append({str(p.relative_to(wd)): _digest(p) for p in files})
        a, b = digests
        differ = sorted(k for k in a if a.get(k) != b.get(k)) + sorted(set(b) - set(a))
        print(f"    wall times of the two runs: {walls[0]:.0f} s, {walls[1]:.0f} s ({cores} cores)")
        print(
            f"    {len(a)} outputs compared (weights by tensor, the rest by bytes): "
            f"{len(a) - len(differ)} identical, {len(differ)} different"
        )
        for k in differ:
            print(f"      differs: {k}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=ROOT / "results/lista")
    ap.add_argument("--snr-setting", default="snr40")
    ap.add_argument("--noiseless-setting", default="noiseless")
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--fista-iters", type=int, default=3000)
    ap.add_argument(
        "--lams", type=float, nargs="+", default=[0.1, 0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4]
    )
    ap.add_argument("--rerun-demo", action="store_true")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"task 3 quality targets from {args.results}")
    check_snr40(args.results, args.snr_setting, args.depth)
    check_noiseless(args.results, args.noiseless_setting, args.depth, args.lams, args.fista_iters)
    check_determinism_inprocess(args.results, args.snr_setting)
    if args.rerun_demo:
        check_determinism_rerun(args.cores)


if __name__ == "__main__":
    main()
