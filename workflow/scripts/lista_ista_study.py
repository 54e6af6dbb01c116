"""Task 3 ISTA study: ISTA and FISTA against the sparsity level of the seed setting."""

import numpy as np

from deepunfold.data.sparse_signals import load_sweep
from deepunfold.figures.lista import plot_convergence, plot_ista_losses, plot_recovery
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.ops.metrics import nmse_db
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.studies.lista import ista_sparsity_study

p = snakemake.params
out = snakemake.output
log = setup_job(snakemake.log[0], snakemake.threads)
sweep = load_sweep(snakemake.input.sweep)
levels = sweep["levels"].tolist()
cfg = p.sweep
summary, curves = ista_sparsity_study(sweep, cfg["lam"], cfg["max_iter"], cfg["conv_tol"])
log.info("ISTA study:\n%s", summary.to_string())

li = levels.index(cfg["example_sparsity"])
z_true = sweep["z"][li, 0]
z_hat = {s: curves[f"{s}_z"][li, 0] for s in ("ista", "fista")}
nmse = {s: nmse_db(z_hat[s], z_true) for s in z_hat}

fig = plot_ista_losses(curves, levels, cfg["lam"], cfg["n_signals"])
demo_note(fig, p.label)
save_figure(fig, out.losses, out.losses_pdf)
fig = plot_recovery(
    z_true.numpy(), z_hat["ista"].numpy(), z_hat["fista"].numpy(), levels[li], cfg["max_iter"], nmse
)
demo_note(fig, p.label)
save_figure(fig, out.recovery, out.recovery_pdf)
fig = plot_convergence(summary, cfg["max_iter"], cfg["conv_tol"])
demo_note(fig, p.label)
save_figure(fig, out.convergence, out.convergence_pdf)
write_table(summary.assign(lam=cfg["lam"], max_iter=cfg["max_iter"]), out.table)
assert np.isfinite(summary.nmse_db).all(), "non-finite NMSE in the ISTA study"
