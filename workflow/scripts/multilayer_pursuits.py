"""Task 6: errors of layered thresholding, layered BP, ML-ISTA and ML-FISTA against iterations."""

import pandas as pd

from deepunfold.figures.multilayer import plot_pursuit_errors
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.solvers.multilayer import (
    generate_signals,
    layered_basis_pursuit,
    layered_thresholding,
    make_multilayer_dictionaries,
    matrix_layer,
    ml_fista,
    ml_ista,
    ml_objective,
    relative_error,
)  # fmt: skip

log = setup_job(snakemake.log[0], snakemake.threads, seed=snakemake.params.seed)
m, p = snakemake.params.model, snakemake.params.pursuits
Ds = make_multilayer_dictionaries(m["dims"], m["atom_nnz"], seed=snakemake.params.seed)
sig = generate_signals(Ds, p["n_signals"], m["sparsity"], noise_std=p["noise_std"],
                       amplitude=tuple(m["amplitude"]), seed=snakemake.params.seed + 1)  # fmt: skip
n_layers = len(Ds)

rows = []
for name, pursuit in [("layered BP", layered_basis_pursuit), ("ML-ISTA", ml_ista),
                      ("ML-FISTA", ml_fista)]:  # fmt: skip
    res = pursuit(sig.y, Ds, p["lambdas"], p["n_iter"], reference=sig.gammas)
    h = {k: v.mean(dim=1) for k, v in res.history.items()}
    frame = pd.DataFrame({"iteration": range(p["n_iter"] + 1)} |
                         {k: v.numpy() for k, v in h.items()})  # fmt: skip
    frame.insert(0, "method", name)
    rows.append(frame)
    log.info("%s after %d iterations: %s", name, p["n_iter"],
             {k: round(float(v[-1]), 5) for k, v in h.items()})  # fmt: skip
errors = pd.concat(rows, ignore_index=True)
# the minimum of (P) per signal, from a longer ML-FISTA run: the objective gap is measured to it
f_star = ml_fista(sig.y, Ds, p["lambdas"], p["reference_iter"]).history["objective"].min(dim=0)
f_star = float(f_star.values.mean())
errors["objective_gap"] = (errors["objective"] - f_star) / abs(f_star)
log.info("F* (mean over signals, ML-FISTA x %d iterations) = %.8g", p["reference_iter"], f_star)

# the forward pass, with the true cardinality of every layer (the best possible biases)
keep = [(g != 0).sum(dim=1) for g in sig.gammas]
lt = layered_thresholding(sig.y, [matrix_layer(D) for D in Ds], None, keep=keep)
one_shot = pd.DataFrame(
    [{"method": "layered thresholding"}
     | {f"rel_error_{i + 1}": float(relative_error(g, t).mean())
        for i, (g, t) in enumerate(zip(lt, sig.gammas, strict=True))}
     | {"objective": float(ml_objective(sig.y, Ds, lt[-1], p["lambdas"]).mean())}]
)  # fmt: skip
one_shot["objective_gap"] = (one_shot["objective"] - f_star) / abs(f_star)
log.info("layered thresholding: %s", one_shot.to_dict("records"))

fig = plot_pursuit_errors(errors, one_shot)
demo_note(fig, snakemake.params.label)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
write_table(pd.concat([errors, one_shot.assign(iteration=-1)], ignore_index=True),
            snakemake.output.table)  # fmt: skip
