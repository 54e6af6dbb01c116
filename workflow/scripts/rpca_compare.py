"""Tasks 4/5: one table and figure comparing L1, L1,2, their untrained iterations and PCP."""

import pandas as pd

from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.figures.rpca import plot_comparison, sort_methods
from deepunfold.pipeline.io import read_table, write_table
from deepunfold.pipeline.jobs import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
table = pd.concat([read_table(path) for path in snakemake.input.metrics], ignore_index=True)
table = sort_methods(table)
log.info("comparison:\n%s", table.to_string())
write_table(table, snakemake.output.table)
fig = plot_comparison(table)
demo_note(fig, snakemake.params.label)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
