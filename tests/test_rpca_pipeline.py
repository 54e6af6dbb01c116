"""Tasks 4/5 in the demo DAG: both arrangements and both sparse priors are built."""

import pytest
from helpers import DEMO, copy_workflow, job_counts, snakemake

from deepunfold.pipeline.io import read_table

pytestmark = pytest.mark.pipeline

RPCA_FIGURES = ["loss", "thresholds", "singular_values", "sparsity", "examples"]


def test_rpca_dry_run_has_every_arrangement_and_variant(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    proc = snakemake(wd, *DEMO, "--dry-run", "results/rpca/comparison.tsv")
    counts = job_counts(proc.stdout)
    assert counts["rpca_data"] == 1
    assert counts["rpca_pcp"] == 2  # frame, video
    assert counts["rpca_train"] == counts["rpca_evaluate"] == 4  # x (l1, l12)
    assert counts["rpca_compare"] == 1
    # the time per sample (a wall-clock measurement) is not needed for the comparison
    assert "rpca_timing" not in counts
    for mode in ("frame", "video"):
        for prox in ("l1", "l12"):
            assert f"wildcards: mode={mode}, prox={prox}" in proc.stdout
    # a config with one arrangement builds only that one
    proc = snakemake(
        wd,
        *DEMO,
        "--dry-run",
        "results/rpca/comparison.tsv",
        "--config",
        "rpca={'modes': ['video'], 'variants': ['l12']}",
    )
    counts = job_counts(proc.stdout)
    assert counts["rpca_train"] == counts["rpca_pcp"] == 1


def test_rpca_demo_outputs(demo_run):
    wd, _ = demo_run
    table = read_table(wd / "results/rpca/comparison.tsv")
    for mode in ("frame", "video"):
        rows = table[table["mode"] == mode]
        got = set(zip(rows["method"], rows["variant"].fillna(""), strict=True))
        assert {
            ("learned", "l1"),
            ("learned", "l12"),
            ("untrained", "l1"),
            ("untrained", "l12"),
            ("pcp", "l1"),
            ("ground truth", ""),
        } <= got
        truth = rows[rows["method"] == "ground truth"].iloc[0]
        assert truth["rank"] == 3  # the configured background rank, in both arrangements
        learned = rows[rows["method"] == "learned"]
        untrained = rows[rows["method"] == "untrained"].set_index("variant")
        # training improves on the untrained iterations it starts from
        for _, row in learned.iterrows():
            assert row["nmse_sparse_db"] < untrained.loc[row["variant"], "nmse_sparse_db"]
        pcp = rows[rows["method"] == "pcp"].iloc[0]
        assert pcp["converged_fraction"] == 1.0
        for prox in ("l1", "l12"):
            for name in RPCA_FIGURES:
                for ext in ("png", "pdf"):
                    f = wd / f"results/figures/rpca/{mode}_{prox}/{name}.{ext}"
                    assert f.stat().st_size > 0
