"""Task 7: the ResNet/SDNet pair side by side: parameter counts, accuracies, training curves."""

import pandas as pd

from deepunfold.figures.csc import plot_training
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.pipeline.io import read_table, write_table
from deepunfold.pipeline.jobs import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
runs = pd.concat([read_table(f) for f in snakemake.input.summaries], ignore_index=True)
history = pd.concat([read_table(f) for f in snakemake.input.histories], ignore_index=True)

table = runs[
    ["model", "dataset", "n_parameters", "best_epoch", "epochs", "val_accuracy", "test_accuracy"]
]
log.info("parameter counts and accuracies:\n%s", table.to_string(index=False))
counts = dict(zip(runs["model"], runs["n_parameters"], strict=True))
if len(set(counts.values())) != 1:
    # a learned lambda adds one scalar to SDNet; anything else is a bug in the pair
    log.warning("parameter counts differ: %s", counts)
else:
    log.info("equal parameter counts: %s", counts)

fig = plot_training(history, runs, runs["dataset"].iloc[0])
demo_note(fig, snakemake.params.label)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
write_table(table, snakemake.output.table)
