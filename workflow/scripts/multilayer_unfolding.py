"""Task 6: test accuracy against the number of ML-ISTA unfoldings (table and figure)."""

import pandas as pd

from deepunfold.figures.multilayer import plot_unfolding_accuracy
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.pipeline.io import read_table, write_table
from deepunfold.pipeline.jobs import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
runs = pd.concat([read_table(f) for f in snakemake.input.summaries], ignore_index=True)
history = pd.concat([read_table(f) for f in snakemake.input.histories], ignore_index=True)

counts = runs.groupby("unfoldings")["n_parameters"].unique()
if runs["n_parameters"].nunique() != 1:
    raise RuntimeError(f"parameter counts differ across unfoldings: {counts.to_dict()}")

summary = (
    runs.groupby("unfoldings")
    .agg(
        n_parameters=("n_parameters", "first"),
        repeats=("repeat", "count"),
        test_accuracy_mean=("test_accuracy", "mean"),
        test_accuracy_std=("test_accuracy", "std"),
        train_accuracy_mean=("train_accuracy", "mean"),
    )
    .reset_index()
)
summary["model"] = summary["unfoldings"].map(
    lambda k: "feed-forward CNN" if k == 0 else f"ML-ISTA net, {k} unfoldings"
)
log.info("accuracy against unfoldings:\n%s", summary.to_string())

fig = plot_unfolding_accuracy(summary, history, runs["dataset"].iloc[0])
demo_note(fig, snakemake.params.label)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
write_table(summary, snakemake.output.table)
