"""Task 1: L2 / L1 / L0 estimates on the configured observations, and their loss curves."""

import numpy as np
import pandas as pd

from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.figures.robust import plot_estimates, plot_loss_curves
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.studies.robust_location import estimate_all

log = setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
x = np.asarray(p.observations, dtype=float)
eps = float(p.l0_tolerance)

estimates = pd.DataFrame([e.__dict__ | {"agree": e.agree} for e in estimate_all(x, eps)])
log.info("estimates:\n%s", estimates.to_string())
bad = estimates[~estimates.agree]
if len(bad):
    raise RuntimeError(
        "numerical minimiser disagrees with the closed form for "
        + ", ".join(bad["loss"])
        + f":\n{bad.to_string()}"
    )

lo, hi = p.plot_range
grid = np.linspace(lo, hi, p.grid_points)

fig = plot_estimates(x, estimates, p.true_value)
demo_note(fig, p.label)
save_figure(fig, snakemake.output.estimates, snakemake.output.estimates_pdf)
fig = plot_loss_curves(x, estimates, grid, eps)
demo_note(fig, p.label)
save_figure(fig, snakemake.output.losses, snakemake.output.losses_pdf)
write_table(estimates, snakemake.output.table)
