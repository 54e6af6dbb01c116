"""Task 3 data: the dictionary and train / validation / test pairs of one setting."""

from deepunfold.data.sparse_signals import make_problem, save_problem
from deepunfold.pipeline.jobs import setup_job

p = snakemake.params
s = p.setting
log = setup_job(snakemake.log[0], snakemake.threads)
problem = make_problem(
    m=s["m"],
    n=s["n"],
    sparsity=s["sparsity"],
    n_train=s["n_train"] - s["n_val"],
    n_val=s["n_val"],
    n_test=s["n_test"],
    noise_std=s["noise_std"],
    snr_db=s["snr_db"],
    seed=p.seed,
)
for name, (x, z) in problem.data.items():
    log.info("%s: x %s, z %s", name, tuple(x.shape), tuple(z.shape))
save_problem(problem, snakemake.output.data)
