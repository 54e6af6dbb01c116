"""Task 7: test accuracy against the number of unfoldings, ML-ISTA net against Res-CSC."""

import pandas as pd

from deepunfold.figures.csc import plot_res_csc
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.pipeline.io import read_table, write_table
from deepunfold.pipeline.jobs import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
runs = pd.concat([read_table(f) for f in snakemake.input.summaries], ignore_index=True)
if runs["n_parameters"].nunique() != 1:
    counts = runs.groupby(["variant", "unfoldings"])["n_parameters"].first().to_dict()
    raise RuntimeError(f"parameter counts differ across variants and unfoldings: {counts}")

summary = (
    runs.groupby(["variant", "unfoldings"], sort=False)
    .agg(
        n_parameters=("n_parameters", "first"),
        repeats=("repeat", "count"),
        test_accuracy_mean=("test_accuracy", "mean"),
        test_accuracy_std=("test_accuracy", "std"),
        val_accuracy_mean=("val_accuracy", "mean"),
    )
    .reset_index()
    .sort_values(
        ["variant", "unfoldings"],
        key=lambda c: c.map({"mlista": 0, "rescsc": 1}) if c.name == "variant" else c,
    )
)
log.info("accuracy against unfoldings:\n%s", summary.to_string(index=False))
fig = plot_res_csc(summary, runs["dataset"].iloc[0])
demo_note(fig, snakemake.params.label)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
write_table(summary, snakemake.output.table)
