"""Task 6: errors of layered thresholding, layered BP, ML-ISTA and ML-FISTA against iterations."""

import pandas as pd

from deepunfold.data.multilayer_signals import generate_signals, make_multilayer_dictionaries
from deepunfold.figures.multilayer import plot_pursuit_errors
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.studies.multilayer import (
    objective_gap,
    oracle_thresholding,
    pursuit_errors,
    reference_objective,
)

log = setup_job(snakemake.log[0], snakemake.threads, seed=snakemake.params.seed)
m, p = snakemake.params.model, snakemake.params.pursuits
Ds = make_multilayer_dictionaries(m["dims"], m["atom_nnz"], seed=snakemake.params.seed)
sig = generate_signals(
    Ds,
    p["n_signals"],
    m["sparsity"],
    noise_std=p["noise_std"],
    amplitude=tuple(m["amplitude"]),
    seed=snakemake.params.seed + 1,
)

errors = pursuit_errors(sig, Ds, p["lambdas"], p["n_iter"])
for name, frame in errors.groupby("method", sort=False):
    last = frame.iloc[-1].drop(["method", "iteration"])
    log.info(
        "%s after %d iterations: %s",
        name,
        p["n_iter"],
        {k: round(float(v), 5) for k, v in last.items()},
    )
# the minimum of (P) per signal, from a longer ML-FISTA run: the objective gap is measured to it
f_star = reference_objective(sig.y, Ds, p["lambdas"], p["reference_iter"])
errors["objective_gap"] = objective_gap(errors["objective"], f_star)
log.info("F* (mean over signals, ML-FISTA x %d iterations) = %.8g", p["reference_iter"], f_star)

# the forward pass, with the true cardinality of every layer (the best possible biases)
one_shot = oracle_thresholding(sig, Ds, p["lambdas"])
one_shot["objective_gap"] = objective_gap(one_shot["objective"], f_star)
log.info("layered thresholding: %s", one_shot.to_dict("records"))

fig = plot_pursuit_errors(errors, one_shot)
demo_note(fig, snakemake.params.label)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
write_table(
    pd.concat([errors, one_shot.assign(iteration=-1)], ignore_index=True), snakemake.output.table
)
