"""The RPCA quality-versus-time frontier: Pareto points, budget reading, real measurements."""

import pandas as pd
import pytest
import torch

from deepunfold.data.moving_digits import load_sklearn_digits, make_moving_digits
from deepunfold.studies.rpca_frontier import (
    accaltproj_points,
    budget_table,
    describe,
    measure,
    model_points,
    on_frontier,
    pcp_points,
)
from deepunfold.unfolded.rpca import UnfoldedRPCA, as_samples


def table(rows):
    return pd.DataFrame(rows, columns=["method", "budget", "ms_per_sample", "nmse_s_db"])


def test_pareto_points():
    t = table(
        [
            ("a", "1", 1.0, -5.0),  # fastest
            ("a", "2", 2.0, -10.0),  # better and slower: on
            ("b", "1", 2.0, -8.0),  # as slow as a/2 and worse: off
            ("b", "2", 3.0, -10.0),  # as good as a/2 but slower: off
            ("b", "3", 9.0, -20.0),  # best: on
        ]
    )
    assert on_frontier(t) == [True, True, False, False, True]


def test_budget_table_reads_multiples_and_never():
    t = table(
        [
            ("learned", "K=4", 1.0, -12.0),
            ("pcp", "iter=5", 0.9, -3.0),
            ("pcp", "iter=50", 4.0, -13.0),
            ("alt", "iter=1", 1.5, -6.0),
        ]
    )
    b = budget_table(t, ("learned", "K=4")).set_index("method")
    assert b.loc["pcp", "best_nmse_s_db_within_1x"] == -3.0
    assert b.loc["pcp", "best_nmse_s_db_within_5x"] == -13.0
    assert b.loc["pcp", "ms_to_reach_reference"] == "4"
    assert b.loc["alt", "ms_to_reach_reference"] == "never"
    assert pd.isna(b.loc["alt", "best_nmse_s_db_within_1x"])
    with pytest.raises(ValueError, match="reference point"):
        budget_table(t, ("learned", "K=8"))


def test_measure_on_moving_digits(one_thread):
    digits = load_sklearn_digits()[:200]
    split = make_moving_digits(digits, 2, seed=0, n_frames=8, size=32)
    x, low, sparse = (as_samples(a, "video") for a in (split.x, split.low_rank, split.sparse))
    arch = dict(
        prox="l1",
        mode="video",
        kernel_size=3,
        step=0.5,
        lowrank_threshold=0.1,
        sparse_threshold=0.05,
    )
    models = {k: UnfoldedRPCA(n_layers=k, **arch) for k in (1, 2)}
    points = (
        model_points(models, "untrained ISTA-RPCA", 2)
        + pcp_points([2, 30], "video", 2)
        + accaltproj_points([0, 10], 3, "video", 2)
    )
    t = measure(points, x, low, sparse, repeats=1)
    assert len(t) == 6 and (t["ms_per_sample"] > 0).all()
    pcp_rows = t[t["method"].str.startswith("PCP")]["nmse_s_db"].tolist()
    assert pcp_rows[1] < pcp_rows[0]  # more iterations, better S
    alt = t[t["method"].str.startswith("AccAltProj")]["nmse_s_db"].tolist()
    assert alt[1] <= alt[0] + 1e-9
    assert any(t["on_frontier"])
    b = budget_table(t, ("untrained ISTA-RPCA", "K=2"))
    lines = describe(t, b, ("untrained ISTA-RPCA", "K=2"))
    assert lines[0].startswith("reference: untrained ISTA-RPCA K=2")


def test_lrpca_in_the_frontiers(one_thread):
    from deepunfold.studies.rpca_frontier import LRPCA_NAME, lrpca_points, synthetic_points
    from deepunfold.unfolded.lrpca import LRPCA, synthetic_problems

    model = LRPCA(2)
    y, low, sparse = synthetic_problems(2, 40, 2, 0.1, generator=torch.Generator().manual_seed(0))
    points = synthetic_points(
        model,
        lrpca_depths=[0, 2, 6],
        rank=2,
        pcp_iterations=[5],
        accaltproj_iterations=[0, 5],
        batch_size=2,
    )
    t = measure(points, y, low, sparse, repeats=1)
    assert t["method"].tolist()[:3] == [LRPCA_NAME] * 3
    assert t["budget"].tolist()[:3] == ["K=0", "K=2", "K=6"]
    assert len(t) == 6 and t["nmse_s_db"].notna().all()
    # on moving digits: samples in, samples out, through the arrangement's matrices
    digits = load_sklearn_digits()[:100]
    split = make_moving_digits(digits, 1, seed=0, n_frames=4, size=32)
    x = as_samples(split.x, "video")
    (point,) = lrpca_points(model, [3], 2, "video", 1)
    lh, sh = point.run(x)
    assert lh.shape == sh.shape == x.shape and point.budget == "K=3"


def test_learned_margins_say_by_how_much():
    from deepunfold.studies.rpca_frontier import LEARNED, LRPCA_NAME, learned_margins

    t = table(
        [
            (LEARNED, "K=4", 1.0, -12.0),
            (LRPCA_NAME, "K=2", 0.5, -10.0),
            ("pcp", "iter=5", 0.9, -3.0),
            ("pcp", "iter=50", 4.0, -13.0),
            (LRPCA_NAME, "K=1", 2.0, -5.0),
        ]
    )
    t["on_frontier"] = on_frontier(t)
    lines = learned_margins(t)
    assert lines[0].startswith(f"{LEARNED} K=4 on the frontier")
    assert "9.00 dB better in S" in lines[0] and "4.00x faster" in lines[0]
    assert lines[1].startswith(f"{LRPCA_NAME} K=2 on the frontier")
    assert "faster than every other point" in lines[1] and len(lines) == 2
    t = t[t["method"] != LEARNED].copy()
    t.loc[t["budget"] == "K=2", "ms_per_sample"] = 5.0
    t.loc[t["budget"] == "K=1", ["ms_per_sample", "nmse_s_db"]] = [3.0, -2.0]
    t["on_frontier"] = on_frontier(t)
    assert "no point on the frontier" in learned_margins(t)[0]
