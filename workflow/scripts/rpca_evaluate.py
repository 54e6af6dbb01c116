"""Tasks 4/5: the trained and the untrained network on the test set: metrics, layers, timing.

The metrics are reproducible; the time per sample (wall clock) goes to its own file under
results/benchmarks/.
"""

import numpy as np
import pandas as pd

from deepunfold.data.moving_digits import load_split
from deepunfold.io import to_numpy
from deepunfold.pipeline.device import resolve_device
from deepunfold.pipeline.io import atomic_path, write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.train.checkpoint import load_model
from deepunfold.train.loop import count_parameters
from deepunfold.unfolded.rpca import (
    UnfoldedRPCA,
    as_samples,
    layer_statistics,
    predict,
    summary_row,
    time_per_sample,
)

p = snakemake.params
log = setup_job(snakemake.log[0], snakemake.threads)
mode, prox = snakemake.wildcards.mode, snakemake.wildcards.prox
test = load_split(snakemake.input.test)
x, low, sparse = (as_samples(a, mode) for a in (test.x, test.low_rank, test.sparse))
batch = p.batch_size[mode]
device = resolve_device(p.device, key="rpca.device", log=log)
x_dev = x.to(device)  # the metrics below compare CPU copies of the predictions

rows, timings, stats, examples = [], [], {}, {}
nets = {
    "learned": load_model(snakemake.input.model, UnfoldedRPCA),
    "untrained": load_model(snakemake.input.untrained, UnfoldedRPCA),
}
for name, net in nets.items():
    net.to(device).eval()
    low_hat, sparse_hat = (a.cpu() for a in predict(net, x_dev, batch))
    seconds = time_per_sample(net, x_dev, batch, repeats=p.timing_repeats)
    row = summary_row(low_hat, sparse_hat, low, sparse, mode, p.rank_rtol)
    n_params = count_parameters(net) if name == "learned" else 0
    rows.append(dict(mode=mode, method=name, variant=prox, **row, n_params=n_params))
    timings.append(dict(mode=mode, method=name, variant=prox, time_per_sample_ms=1e3 * seconds))
    log.info("%s: %s, %.2f ms/sample", name, row, 1e3 * seconds)
    for key, value in layer_statistics(net, x_dev, batch).items():
        stats[f"{name}_{key}"] = value
    stats[f"{name}_thresholds"] = to_numpy(net.thresholds)
    examples[f"{name}_low_hat"] = to_numpy(low_hat[: p.n_examples])
    examples[f"{name}_sparse_hat"] = to_numpy(sparse_hat[: p.n_examples])

write_table(pd.DataFrame(rows), snakemake.output.metrics)
write_table(pd.DataFrame(timings), snakemake.output.timing)
init = UnfoldedRPCA(**nets["learned"].config).thresholds
table = pd.DataFrame(
    {
        "layer": np.arange(1, nets["learned"].n_layers + 1),
        "mu1_init": to_numpy(init[:, 0]),
        "mu2_init": to_numpy(init[:, 1]),
        "mu1": stats["learned_thresholds"][:, 0],
        "mu2": stats["learned_thresholds"][:, 1],
        "mu1_untrained": stats["untrained_thresholds"][:, 0],
        "mu2_untrained": stats["untrained_thresholds"][:, 1],
    }
)
write_table(table, snakemake.output.thresholds)
stats["target_zero_fraction"] = np.float64((sparse == 0).double().mean())
n = p.n_examples
examples |= {"x": to_numpy(x[:n]), "low": to_numpy(low[:n]), "sparse": to_numpy(sparse[:n])}
for path, arrays in ((snakemake.output.layers, stats), (snakemake.output.examples, examples)):
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
