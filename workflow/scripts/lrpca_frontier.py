"""LRPCA on the paper's synthetic problems: quality against time per matrix of LRPCA per
depth, AccAltProj and PCP per iteration count (all given or finding the same rank; float64).

Times are measurements of this machine: everything this job writes lives under
results/benchmarks/ and differs between any two runs.
"""

from pathlib import Path

import torch

from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.figures.rpca_frontier import plot_frontier
from deepunfold.pipeline.io import atomic_path, write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.studies.rpca_frontier import (
    LRPCA_NAME,
    budget_table,
    describe,
    measure,
    synthetic_points,
)
from deepunfold.train.checkpoint import load_model
from deepunfold.unfolded.lrpca import LRPCA, synthetic_problems

p = snakemake.params
log = setup_job(snakemake.log[0], snakemake.threads, seed=0)
c, f = p.lrpca, p.frontier
syn = c["synthetic"]
g = torch.Generator().manual_seed(20_000 + syn["seed"])  # validation: 10_000 + seed
y, low, sparse = synthetic_problems(syn["n_test"], syn["n"], syn["rank"], syn["alpha"], generator=g)
model = load_model(snakemake.input.model, LRPCA)
depths = sorted({*c["depths"], c["n_layers"]})
points = synthetic_points(
    model,
    lrpca_depths=depths,
    rank=syn["rank"],
    pcp_iterations=f["pcp_iterations"],
    accaltproj_iterations=f["accaltproj_iterations"],
    batch_size=syn["n_test"],
    pcp_tol=p.pcp["tol"],
    svt_method=p.pcp["svt"],
)
log.info(
    "%d points on %d test matrices (n = %d, rank %d, outliers %.2f), %d timing rounds",
    len(points),
    len(y),
    syn["n"],
    syn["rank"],
    syn["alpha"],
    f["repeats"],
)
table = measure(points, y, low, sparse, repeats=f["repeats"], progress=log.info)
reference = (LRPCA_NAME, f"K={c['n_layers']}")
budgets = budget_table(table, reference)
lines = describe(table, budgets, reference)
log.info("frontier:\n%s\n%s\n%s", table.to_string(), budgets.to_string(), "\n".join(lines))

write_table(table, snakemake.output.points)
write_table(budgets, snakemake.output.budgets)
with atomic_path(snakemake.output.summary) as tmp:
    Path(tmp).write_text("\n".join(lines) + "\n")
title = (
    f"synthetic {syn['n']} x {syn['n']}, rank {syn['rank']}, {syn['alpha']:.0%} outliers "
    "(the LRPCA paper's problems)"
)
fig = plot_frontier(table, title=title)
demo_note(fig, p.label)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
