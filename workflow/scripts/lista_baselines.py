"""Task 3 baselines: NMSE of ISTA and FISTA iterates on the test set of one setting."""

import pandas as pd

from deepunfold.data.sparse_signals import load_problem
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.unfolded.lista import solver_curve

p = snakemake.params
log = setup_job(snakemake.log[0], snakemake.threads)
problem = load_problem(snakemake.input.data)
x, z = problem.split("test")
tables = []
for solver in ("ista", "fista"):
    curve = solver_curve(x, z, problem.A, p.lam, p.n_iter, accelerated=solver == "fista")
    log.info("%s: NMSE %.2f dB after %d iterations", solver, curve.nmse_db.iloc[-1], p.n_iter)
    tables.append(curve.assign(solver=solver, lam=p.lam))
write_table(pd.concat(tables, ignore_index=True), snakemake.output.table)
