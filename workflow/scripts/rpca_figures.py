"""Tasks 4/5: the figures of one variant (loss, thresholds, singular values, sparsity, examples)."""

import numpy as np

from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.figures.rpca import (
    plot_examples,
    plot_loss,
    plot_singular_values,
    plot_sparsity,
    plot_thresholds,
)
from deepunfold.pipeline.io import read_table
from deepunfold.pipeline.jobs import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
p, out = snakemake.params, snakemake.output
mode, prox = snakemake.wildcards.mode, snakemake.wildcards.prox
history = read_table(snakemake.input.history)
thresholds = read_table(snakemake.input.thresholds)
pcp_metrics = read_table(snakemake.input.pcp_metrics)
truth = pcp_metrics[pcp_metrics["method"] == "ground truth"].iloc[0]
with np.load(snakemake.input.layers) as f:
    stats = dict(f)
with np.load(snakemake.input.examples) as f:
    examples = dict(f)
with np.load(snakemake.input.pcp_examples) as f:
    pcp = dict(f)

figures = [
    (plot_loss(history, mode, prox), out.loss, out.loss_pdf),
    (plot_thresholds(thresholds, history, mode, prox), out.thresholds, out.thresholds_pdf),
    (
        plot_singular_values(
            stats["learned_singular_values"], stats["untrained_singular_values"], mode, prox
        ),
        out.singular_values,
        out.singular_values_pdf,
    ),
    (
        plot_sparsity(stats, mode, prox, truth["zero_group_fraction"]),
        out.sparsity,
        out.sparsity_pdf,
    ),
    (plot_examples(examples, pcp, mode, prox, 0, p.example_frame), out.examples, out.examples_pdf),
]
for fig, png, pdf in figures:
    demo_note(fig, p.label)
    save_figure(fig, png, pdf)
