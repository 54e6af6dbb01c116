"""Tasks 4/5: time per test sample of every method and its speed-up over PCP (wall clock).

A measurement of this machine, not a result: it lives under results/benchmarks/ and differs
between any two runs.
"""

import pandas as pd

from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.figures.rpca import plot_timing, sort_methods
from deepunfold.pipeline.io import read_table, write_table
from deepunfold.pipeline.jobs import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
table = pd.concat([read_table(path) for path in snakemake.input.timings], ignore_index=True)
pcp = table[table["method"] == "pcp"].set_index("mode")["time_per_sample_ms"]
table["speedup_vs_pcp"] = table["mode"].map(pcp) / table["time_per_sample_ms"]
table = sort_methods(table)
log.info("time per sample:\n%s", table.to_string())
write_table(table, snakemake.output.table)
fig = plot_timing(table)
demo_note(fig, snakemake.params.label)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
