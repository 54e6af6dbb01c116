"""Tasks 4/5: classical PCP (inexact ALM) on the test set of one arrangement.

The metrics are reproducible; the time per sample (wall clock) goes to its own file under
results/benchmarks/.
"""

import time

import numpy as np
import pandas as pd
import torch

from deepunfold.data.moving_digits import load_split
from deepunfold.io import to_numpy
from deepunfold.pipeline.io import atomic_path, write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.solvers.pcp import pcp
from deepunfold.unfolded.rpca import as_matrix, as_samples, from_matrix, summary_row

log = setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
mode, c = snakemake.wildcards.mode, p.pcp
test = load_split(snakemake.input.test)
x, low, sparse = (as_samples(a, mode) for a in (test.x, test.low_rank, test.sparse))
batch = p.batch_size[mode]

# float64: the stopping tolerance (1e-7) is below what float32 can resolve
results = []
with torch.inference_mode():
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        xb = as_matrix(x[i : i + batch], mode).double()
        res = pcp(xb, tol=c["tol"], max_iter=c["max_iter"], rho=c["rho"], svt_method=c["svt"])
        results.append(res)
    seconds = (time.perf_counter() - start) / len(x)

low_hat = from_matrix(torch.cat([r.low_rank for r in results]), mode, x.shape).float()
sparse_hat = from_matrix(torch.cat([r.sparse for r in results]), mode, x.shape).float()
iters = torch.cat([r.iterations for r in results]).double()
converged = torch.cat([r.converged for r in results])
log.info(
    "PCP: %.1f iterations on average, %d/%d converged, %.2f ms/sample",
    float(iters.mean()),
    int(converged.sum()),
    len(x),
    1e3 * seconds,
)
if not bool(converged.all()):
    log.warning("PCP did not reach tol %g on %d samples", c["tol"], int((~converged).sum()))

rtol = p.rank_rtol
rows = [
    dict(
        mode=mode,
        method="pcp",
        variant="l1",
        **summary_row(low_hat, sparse_hat, low, sparse, mode, rtol),
        n_params=0,
        iterations=float(iters.mean()),
        converged_fraction=float(converged.double().mean()),
    ),
    dict(
        mode=mode,
        method="ground truth",
        variant="",
        nmse_low_db=np.nan,
        nmse_sparse_db=np.nan,
        **{
            k: v
            for k, v in summary_row(low, sparse, low, sparse, mode, rtol).items()
            if not k.startswith("nmse")
        },
    ),
]
write_table(pd.DataFrame(rows), snakemake.output.metrics)
timing = dict(mode=mode, method="pcp", variant="l1", time_per_sample_ms=1e3 * seconds)
write_table(pd.DataFrame([timing]), snakemake.output.timing)
n = p.n_examples
with atomic_path(snakemake.output.examples) as tmp, open(tmp, "wb") as f:
    np.savez(f, low_hat=to_numpy(low_hat[:n]), sparse_hat=to_numpy(sparse_hat[:n]))
