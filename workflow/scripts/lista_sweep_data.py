"""Task 3 data: test signals of the seed setting at every sparsity level (the ISTA study)."""

from deepunfold.data.sparse_signals import make_sparsity_sweep, save_sweep
from deepunfold.pipeline.jobs import setup_job

p = snakemake.params
log = setup_job(snakemake.log[0], snakemake.threads)
sweep = make_sparsity_sweep(
    m=p.sweep["m"],
    n=p.sweep["n"],
    levels=p.sweep["sparsity_levels"],
    n_signals=p.sweep["n_signals"],
    noise_std=p.sweep["noise_std"],
    seed=p.seed,
)
log.info(
    "sweep: A %s, x %s, z %s",
    tuple(sweep["A"].shape),
    tuple(sweep["x"].shape),
    tuple(sweep["z"].shape),
)
save_sweep(sweep, snakemake.output.sweep)
