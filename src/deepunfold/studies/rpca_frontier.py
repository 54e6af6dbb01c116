r"""The quality-versus-time frontier of robust PCA solvers (tasks 4 and 5).

One ratio against one baseline at one depth is a weak claim; what the unfolding papers argue
(CORONA; Cai, Liu & Yin's learned RPCA) is the frontier: for each time budget, the best
quality each method reaches. Here every method is a ladder of budgets on the same test set:

* PCP by inexact ALM (:func:`~deepunfold.solvers.pcp.pcp`) stopped after a ladder of
  iteration counts, which traces its whole curve, not only the converged point;
* AccAltProj (:func:`~deepunfold.solvers.accaltproj.accaltproj`), **given the true rank**,
  after a ladder of iteration counts (0 is its initialisation: one truncated SVD);
* the untrained ISTA-RPCA (:class:`~deepunfold.unfolded.rpca.UnfoldedRPCA` with thresholds
  tuned on validation data) at K iterations;
* the learned unfolded RPCA at K layers (one trained model per depth);
* the learned RPCA that scales (:class:`~deepunfold.unfolded.lrpca.LRPCA`, **given the true
  rank**) at a ladder of depths K, one trained model run at every depth.

Each point is (milliseconds per sample, test NMSE of S and of L in dB). Quality is computed
once per point; times are measured with every point run once per round, round after round,
in one process (best of ``repeats``), so all methods see the same machine load.
:func:`budget_table` then reads the frontier: each method's best NMSE within 1x, 2x and 5x
the reference (the learned model at the pipeline's depth) time, and each classical
method's time to reach the reference quality, or ``never`` within its ladder.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from deepunfold.ops.metrics import nmse_db
from deepunfold.solvers.accaltproj import accaltproj
from deepunfold.solvers.pcp import pcp
from deepunfold.unfolded.lrpca import LRPCA
from deepunfold.unfolded.rpca import UnfoldedRPCA, as_matrix, from_matrix, predict

#: Budget multiples of the reference time at which :func:`budget_table` reads each method.
BUDGET_MULTIPLES = (1, 2, 5)


@dataclass
class Point:
    """One budget of one method: ``run(x)`` returns ``(L_hat, S_hat)`` for all of ``x``."""

    method: str
    budget: str  # "K=4", "iter=20", ...
    run: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _batched(fn, x: torch.Tensor, batch_size: int):
    outs = [fn(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


def _ladder(
    method: str,
    iterations: Sequence[int],
    mode: str | None,
    batch_size: int,
    solve,
    dtype,
    label: str = "iter",
) -> list[Point]:
    """One point per iteration budget ``k`` of a solver on the arrangement's matrices
    (``mode=None``: the samples are matrices already): ``solve(matrices, k)`` returns the
    low-rank and sparse matrices."""

    def make(k):
        def one(xb):
            m = xb if mode is None else as_matrix(xb, mode)
            low, sparse = solve(m.to(dtype), k)
            if mode is None:
                return low.to(xb.dtype), sparse.to(xb.dtype)
            return from_matrix(low, mode, xb.shape), from_matrix(sparse, mode, xb.shape)

        return lambda x: _batched(one, x, batch_size)

    return [Point(method, f"{label}={k}", make(k)) for k in iterations]


def pcp_points(
    iterations: Sequence[int],
    mode: str | None,
    batch_size: int,
    tol: float = 1e-7,
    svt_method: str = "gram",
    dtype=torch.float64,
) -> list[Point]:
    """PCP stopped after each of ``iterations`` (or earlier at ``tol``), in ``dtype``."""

    def solve(m, k):
        res = pcp(m, tol=tol, max_iter=k, svt_method=svt_method)
        return res.low_rank, res.sparse

    return _ladder("PCP (inexact ALM)", iterations, mode, batch_size, solve, dtype)


def accaltproj_points(
    iterations: Sequence[int],
    rank: int,
    mode: str | None,
    batch_size: int,
    tol: float = 1e-7,
    dtype=torch.float64,
) -> list[Point]:
    """AccAltProj with the true ``rank`` after each of ``iterations`` (0: initialisation)."""

    def solve(m, k):
        res = accaltproj(m, rank=rank, tol=tol, max_iter=k)
        return res.low, res.sparse

    return _ladder("AccAltProj (true rank)", iterations, mode, batch_size, solve, dtype)


def model_points(models: dict[int, UnfoldedRPCA], method: str, batch_size: int) -> list[Point]:
    """One point per depth K of ``models`` ({K: model}), run by :func:`predict`."""

    def make(model):
        model.eval()
        return lambda x: predict(model, x, batch_size)

    return [Point(method, f"K={k}", make(models[k])) for k in sorted(models)]


def lrpca_points(
    model: LRPCA,
    depths: Sequence[int],
    rank: int,
    mode: str | None,
    batch_size: int,
    dtype=torch.float32,
) -> list[Point]:
    """The learned RPCA (LRPCA, given ``rank``) after each of ``depths`` layers: one trained
    model runs at every depth (past its trained layers with extrapolated thresholds)."""
    model.eval()

    def solve(m, k):
        return model(m, rank, k)

    return _ladder(LRPCA_NAME, depths, mode, batch_size, solve, dtype, label="K")


LEARNED, UNTRAINED = "learned unfolded RPCA", "untrained ISTA-RPCA"
LRPCA_NAME = "LRPCA (learned, true rank)"


def study_points(
    learned: dict[int, UnfoldedRPCA],
    untrained: dict[int, UnfoldedRPCA],
    mode: str,
    batch_size: int,
    *,
    pcp_iterations: Sequence[int],
    accaltproj_iterations: Sequence[int],
    rank: int,
    pcp_tol: float = 1e-7,
    svt_method: str = "gram",
    lrpca: LRPCA | None = None,
    lrpca_depths: Sequence[int] = (),
) -> list[Point]:
    """Every point of the frontier study: the learned and untrained models per depth
    ({K: model}), PCP's and AccAltProj's (given ``rank``) iteration ladders, and, if given,
    the learned RPCA ``lrpca`` (given ``rank``) at each of ``lrpca_depths`` layers."""
    return (
        model_points(learned, LEARNED, batch_size)
        + model_points(untrained, UNTRAINED, batch_size)
        + pcp_points(pcp_iterations, mode, batch_size, tol=pcp_tol, svt_method=svt_method)
        + accaltproj_points(accaltproj_iterations, rank, mode, batch_size)
        + (lrpca_points(lrpca, lrpca_depths, rank, mode, batch_size) if lrpca else [])
    )


def synthetic_points(
    lrpca: LRPCA,
    *,
    lrpca_depths: Sequence[int],
    rank: int,
    pcp_iterations: Sequence[int],
    accaltproj_iterations: Sequence[int],
    batch_size: int,
    pcp_tol: float = 1e-7,
    svt_method: str = "gram",
) -> list[Point]:
    """The frontier of the synthetic low-rank-plus-sparse matrices (float64, given
    ``rank``): LRPCA per depth, PCP's and AccAltProj's ladders. The convolutional networks
    are for image sequences and are not part of it."""
    return (
        lrpca_points(lrpca, lrpca_depths, rank, None, batch_size, dtype=torch.float64)
        + pcp_points(pcp_iterations, None, batch_size, tol=pcp_tol, svt_method=svt_method)
        + accaltproj_points(accaltproj_iterations, rank, None, batch_size)
    )


def measure(
    points: Sequence[Point],
    x: torch.Tensor,
    low: torch.Tensor,
    sparse: torch.Tensor,
    repeats: int = 3,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Quality and time per sample of every point on ``(x, low, sparse)`` samples.

    Columns: method, budget, nmse_s_db, nmse_l_db, ms_per_sample, on_frontier (not beaten by
    any point of any method that is both at least as fast and at least as good in S).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    rows = []
    with torch.inference_mode():
        for p in points:  # quality, and the warm-up of every kernel
            lh, sh = p.run(x)
            rows.append(
                {
                    "method": p.method,
                    "budget": p.budget,
                    "nmse_s_db": nmse_db(sh, sparse),
                    "nmse_l_db": nmse_db(lh, low),
                }
            )
            if progress:
                progress(f"{p.method} {p.budget}: S {rows[-1]['nmse_s_db']:.2f} dB")
        best = [math.inf] * len(points)
        for _ in range(repeats):
            for i, p in enumerate(points):
                start = time.perf_counter()
                p.run(x)
                best[i] = min(best[i], time.perf_counter() - start)
    table = pd.DataFrame(rows)
    table["ms_per_sample"] = [1e3 * t / len(x) for t in best]
    table["on_frontier"] = on_frontier(table)
    return table


def on_frontier(table: pd.DataFrame) -> list[bool]:
    """Pareto optimality in (ms_per_sample, nmse_s_db), both lower-is-better."""
    ms, q = table["ms_per_sample"].to_numpy(), table["nmse_s_db"].to_numpy()
    out = []
    for i in range(len(table)):
        dominated = ((ms <= ms[i]) & (q <= q[i]) & ((ms < ms[i]) | (q < q[i]))).any()
        out.append(not bool(dominated))
    return out


def budget_table(
    table: pd.DataFrame, reference: tuple[str, str], multiples: Sequence[float] = BUDGET_MULTIPLES
) -> pd.DataFrame:
    """Per method: best NMSE of S within each multiple of the reference point's time, and
    the time needed to reach the reference point's NMSE of S (``never`` within its ladder).

    ``reference`` is ``(method, budget)`` of one row of ``table``.
    """
    ref = table[(table["method"] == reference[0]) & (table["budget"] == reference[1])]
    if len(ref) != 1:
        raise ValueError(f"reference point {reference} is not (exactly once) in the table")
    ref_ms, ref_q = float(ref["ms_per_sample"].iloc[0]), float(ref["nmse_s_db"].iloc[0])
    rows = []
    for method, pts in table.groupby("method", sort=False):
        row = {"method": method}
        for k in multiples:
            within = pts[pts["ms_per_sample"] <= k * ref_ms]
            row[f"best_nmse_s_db_within_{k:g}x"] = (
                float(within["nmse_s_db"].min()) if len(within) else float("nan")
            )
        reach = pts[pts["nmse_s_db"] <= ref_q]
        row["ms_to_reach_reference"] = (
            f"{float(reach['ms_per_sample'].min()):.4g}" if len(reach) else "never"
        )
        row["best_nmse_s_db"] = float(pts["nmse_s_db"].min())
        rows.append(row)
    return pd.DataFrame(rows)


def describe(table: pd.DataFrame, budgets: pd.DataFrame, reference: tuple[str, str]) -> list[str]:
    """Plain sentences: where the reference model is and is not on the frontier."""
    ref = table[(table["method"] == reference[0]) & (table["budget"] == reference[1])].iloc[0]
    lines = [
        f"reference: {reference[0]} {reference[1]}: S {ref['nmse_s_db']:.2f} dB at "
        f"{ref['ms_per_sample']:.3g} ms/sample; "
        + ("on the frontier" if ref["on_frontier"] else "NOT on the frontier")
    ]
    beaters = table[
        (table["method"] != reference[0])
        & (table["ms_per_sample"] <= ref["ms_per_sample"])
        & (table["nmse_s_db"] <= ref["nmse_s_db"])
    ]
    for _, b in beaters.iterrows():
        lines.append(
            f"  beaten by {b['method']} {b['budget']}: S {b['nmse_s_db']:.2f} dB at "
            f"{b['ms_per_sample']:.3g} ms/sample"
        )
    for _, row in budgets.iterrows():
        if row["method"] == reference[0]:
            continue
        reach = row["ms_to_reach_reference"]
        lines.append(
            f"  {row['method']}: "
            + (
                f"reaches the reference's S quality in {reach} ms/sample "
                f"({float(reach) / ref['ms_per_sample']:.1f}x its time)"
                if reach != "never"
                else "never reaches the reference's S quality in its ladder"
            )
            + f"; best S {row['best_nmse_s_db']:.2f} dB"
        )
    return lines + learned_margins(table)


def learned_margins(
    table: pd.DataFrame, learned: Sequence[str] = (LEARNED, LRPCA_NAME)
) -> list[str]:
    """Plain sentences: per learned family present in ``table``, its points on the frontier
    and by how much (dB of S better than the best other-family point at most as slow; times
    faster than the fastest other-family point at least as good), or that none is."""
    others = table[~table["method"].isin(learned)]
    lines = []
    for method in learned:
        pts = table[table["method"] == method]
        if not len(pts):
            continue
        front = pts[pts["on_frontier"]]
        if not len(front):
            best = pts.loc[pts["nmse_s_db"].idxmin()]
            lines.append(
                f"{method}: no point on the frontier (best S {best['nmse_s_db']:.2f} dB "
                f"at {best['ms_per_sample']:.3g} ms/sample)"
            )
            continue
        for _, p in front.iterrows():
            faster = others[others["ms_per_sample"] <= p["ms_per_sample"]]
            better = others[others["nmse_s_db"] <= p["nmse_s_db"]]
            dq = (
                f"{float(faster['nmse_s_db'].min()) - p['nmse_s_db']:.2f} dB better in S than "
                "any other method as fast"
                if len(faster)
                else "faster than every other point"
            )
            dt = (
                f"{float(better['ms_per_sample'].min()) / p['ms_per_sample']:.2f}x faster than "
                "any other method as good"
                if len(better)
                else "better than every other point"
            )
            lines.append(
                f"{method} {p['budget']} on the frontier (S {p['nmse_s_db']:.2f} dB, "
                f"{p['ms_per_sample']:.3g} ms/sample): {dq}; {dt}"
            )
    return lines
