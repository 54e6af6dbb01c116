"""Tasks 4/5: the quality-vs-time frontier of PCP, AccAltProj, untrained and learned models
(the unfolded conv network per depth, and LRPCA per depth of its arrangement's model).

Times are measurements of this machine: everything this job writes lives under
results/benchmarks/ and differs between any two runs.
"""

from pathlib import Path

from deepunfold.data.moving_digits import load_split
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.figures.rpca_frontier import plot_frontier
from deepunfold.pipeline.io import atomic_path, write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.studies.rpca_frontier import (
    LEARNED,
    UNTRAINED,
    budget_table,
    describe,
    measure,
    study_points,
)
from deepunfold.train.checkpoint import load_model
from deepunfold.unfolded.lrpca import LRPCA
from deepunfold.unfolded.rpca import UnfoldedRPCA, as_samples

p = snakemake.params
log = setup_job(snakemake.log[0], snakemake.threads, seed=0)
mode, prox = snakemake.wildcards.mode, snakemake.wildcards.prox
f = p.frontier
batch = p.batch_size[mode]

test = load_split(snakemake.input.test)
x, low, sparse = (as_samples(a, mode) for a in (test.x, test.low_rank, test.sparse))
checkpoints = {LEARNED: snakemake.input.learned, UNTRAINED: snakemake.input.untrained}
models = {
    kind: {k: load_model(c, UnfoldedRPCA) for k, c in zip(f["depths"], paths, strict=True)}
    for kind, paths in checkpoints.items()
}
# LRPCA (given the rank) when rpca.lrpca.enabled: its arrangement's model at every depth
lrpca = load_model(snakemake.input.lrpca, LRPCA) if snakemake.input.get("lrpca") else None
points = study_points(
    models[LEARNED],
    models[UNTRAINED],
    mode,
    batch,
    pcp_iterations=f["pcp_iterations"],
    accaltproj_iterations=f["accaltproj_iterations"],
    rank=p.rank,
    pcp_tol=p.pcp["tol"],
    svt_method=p.pcp["svt"],
    lrpca=lrpca,
    lrpca_depths=p.lrpca_depths,
)
log.info("%d points on %d test samples, %d timing rounds", len(points), len(x), f["repeats"])
table = measure(points, x, low, sparse, repeats=f["repeats"], progress=log.info)
reference = (LEARNED, f"K={p.reference_depth}")
budgets = budget_table(table, reference)
lines = describe(table, budgets, reference)
log.info("frontier:\n%s\n%s\n%s", table.to_string(), budgets.to_string(), "\n".join(lines))

write_table(table, snakemake.output.points)
write_table(budgets, snakemake.output.budgets)
with atomic_path(snakemake.output.summary) as tmp:
    Path(tmp).write_text("\n".join(lines) + "\n")
fig = plot_frontier(table, mode, prox, p.digits_name)
demo_note(fig, p.label)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
