"""Task 6: support recovery of the forward pass (layered thresholding) against noise."""

import pandas as pd

from deepunfold.data.multilayer_signals import make_multilayer_dictionaries
from deepunfold.figures.multilayer import plot_forward_support
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.studies.multilayer import forward_support

log = setup_job(snakemake.log[0], snakemake.threads, seed=snakemake.params.seed)
m, f = snakemake.params.model, snakemake.params.forward
Ds = make_multilayer_dictionaries(m["dims"], m["atom_nnz"], seed=snakemake.params.seed)
rows = forward_support(
    Ds,
    f["n_signals"],
    m["sparsity"],
    f["noise_stds"],
    amplitude=tuple(m["amplitude"]),
    seed=snakemake.params.seed,
)
support = pd.DataFrame(rows)
log.info("forward-pass support recovery:\n%s", support.to_string())

fig = plot_forward_support(support)
demo_note(fig, snakemake.params.label)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
write_table(support, snakemake.output.table)
