"""Task 6: support recovery of the forward pass (layered thresholding) against noise."""

import pandas as pd

from deepunfold.figures.multilayer import plot_forward_support
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.solvers.multilayer import (
    generate_signals,
    layered_thresholding,
    make_multilayer_dictionaries,
    matrix_layer,
)  # fmt: skip

log = setup_job(snakemake.log[0], snakemake.threads, seed=snakemake.params.seed)
m, f = snakemake.params.model, snakemake.params.forward
Ds = make_multilayer_dictionaries(m["dims"], m["atom_nnz"], seed=snakemake.params.seed)
layers = [matrix_layer(D) for D in Ds]

rows = []
for j, sigma in enumerate(f["noise_stds"]):
    sig = generate_signals(
        Ds,
        f["n_signals"],
        m["sparsity"],
        noise_std=sigma,
        amplitude=tuple(m["amplitude"]),
        seed=snakemake.params.seed + 1 + j,
    )
    keep = [(g != 0).sum(dim=1) for g in sig.gammas]
    est = layered_thresholding(sig.y, layers, None, keep=keep)
    for i, (g_hat, g) in enumerate(zip(est, sig.gammas, strict=True), start=1):
        s_hat, s = g_hat != 0, g != 0
        rows.append({
            "noise_std": sigma, "layer": i, "n_signals": f["n_signals"],
            "exact_recovery": float((s_hat == s).all(dim=1).double().mean()),
            "support_overlap": float(((s_hat & s).sum(1) / s.sum(1)).mean()),
            "mean_true_nnz": float(s.sum(1).double().mean()),
        })  # fmt: skip
support = pd.DataFrame(rows)
log.info("forward-pass support recovery:\n%s", support.to_string())

fig = plot_forward_support(support)
demo_note(fig, snakemake.params.label)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
write_table(support, snakemake.output.table)
