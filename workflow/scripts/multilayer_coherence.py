"""Task 6: mutual coherence of the dictionaries and support recovery of BP (FISTA) and OMP."""

import pandas as pd

from deepunfold.figures.multilayer import plot_recovery
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.studies.coherence import (
    coherence_bound,
    make_dictionary,
    mutual_coherence,
    recovery_experiment,
)

log = setup_job(snakemake.log[0], snakemake.threads, seed=snakemake.params.seed)
c = snakemake.params.coherence
n = c["signal_dim"]
levels = list(range(1, c["max_sparsity"] + 1))

dicts, tables = [], []
for i, kind in enumerate(c["dictionaries"]):
    D = make_dictionary(kind, n, c["gaussian_atoms"], seed=snakemake.params.seed + i)
    mu = mutual_coherence(D)
    dicts.append(
        {"dictionary": kind, "n": n, "m": D.shape[1], "coherence": mu, "bound": coherence_bound(mu)}
    )
    log.info("%s: %dx%d, mu = %.6f, bound = %.3f", kind, n, D.shape[1], mu, dicts[-1]["bound"])
    table = recovery_experiment(
        D,
        levels,
        c["n_trials"],
        lam=c["bp_lambda"],
        max_iter=c["bp_max_iter"],
        tol=c["bp_tol"],
        support_rtol=c["support_rtol"],
        amplitude=tuple(c["amplitude"]),
        seed=snakemake.params.seed + 100 + i,
    )
    table.insert(0, "dictionary", kind)
    log.info(
        "recovery rates:\n%s",
        table.pivot(index="sparsity", columns="method", values="recovery_rate").to_string(),
    )
    tables.append(table)

dicts = pd.DataFrame(dicts)
recovery = pd.concat(tables, ignore_index=True)
# the guarantee: below the bound both pursuits must recover every support
below = recovery.merge(dicts, on="dictionary").query("sparsity < bound")
if (below.recovery_rate < 1).any():
    log.warning(
        "recovery below the coherence bound failed:\n%s", below[below.recovery_rate < 1].to_string()
    )

fig = plot_recovery(recovery, dicts)
demo_note(fig, snakemake.params.label)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
write_table(dicts, snakemake.output.dictionaries)
write_table(recovery, snakemake.output.recovery)
