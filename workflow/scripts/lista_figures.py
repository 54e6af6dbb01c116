"""Task 3 figures of one setting: training curves, per-layer NMSE / sparsity, NMSE vs iterations."""

import pandas as pd

from deepunfold.data.sparse_signals import load_problem
from deepunfold.figures.lista import plot_layers, plot_nmse_iterations, plot_training
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.ops.metrics import fraction_zeros
from deepunfold.pipeline.io import read_table, write_table
from deepunfold.pipeline.jobs import setup_job

p = snakemake.params
out = snakemake.output
log = setup_job(snakemake.log[0], snakemake.threads)
histories = {m: read_table(f) for m, f in zip(p.models, snakemake.input.histories, strict=True)}
layers = {m: read_table(f) for m, f in zip(p.models, snakemake.input.layers, strict=True)}
baselines = read_table(snakemake.input.baselines)
_, z_test = load_problem(snakemake.input.data).split("test")
true_zeros = fraction_zeros(z_test)
setting = snakemake.wildcards.setting

figures = [
    (plot_training(histories, setting), out.training, out.training_pdf),
    (plot_layers(layers, baselines, setting, true_zeros), out.layers, out.layers_pdf),
    (plot_nmse_iterations(layers, baselines, setting, p.lam), out.iterations, out.iterations_pdf),
]
for fig, png, pdf in figures:
    demo_note(fig, p.label)
    save_figure(fig, png, pdf)

# one row per method at the deepest trained depth: the numbers the benchmark prints
rows = []
for solver, curve in baselines.groupby("solver", sort=False):
    at = curve[curve.iteration == p.depth]
    rows.append(
        {
            "method": solver,
            "layers_or_iterations": p.depth,
            "test_nmse_db": float(at.nmse_db.iloc[0]),
            "test_fraction_zeros": float(at.fraction_zeros.iloc[0]),
        }
    )
for name, t in layers.items():
    last = t[t.layer == t.layer.max()].iloc[0]
    rows.append(
        {
            "method": name,
            "layers_or_iterations": int(last.layer),
            "test_nmse_db": float(last.test_nmse_db),
            "test_fraction_zeros": float(last.test_fraction_zeros),
        }
    )
summary = pd.DataFrame(rows).assign(setting=setting, true_fraction_zeros=true_zeros)
log.info("summary:\n%s", summary.to_string())
write_table(summary, out.summary)
