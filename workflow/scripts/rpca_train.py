"""Tasks 4/5: tune the untrained ISTA-RPCA thresholds, then train the unfolded network."""

import pandas as pd
from tqdm import tqdm

from deepunfold.data.moving_digits import load_split
from deepunfold.pipeline.device import resolve_device
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.train.checkpoint import save_model
from deepunfold.train.loop import count_parameters
from deepunfold.unfolded.rpca import (
    UnfoldedRPCA,
    as_samples,
    history_table,
    initial_thresholds,
    train_unfolded,
    tune_untrained,
)

p = snakemake.params
log = setup_job(snakemake.log[0], snakemake.threads, seed=p.seed)
mode, prox = snakemake.wildcards.mode, snakemake.wildcards.prox
m, t = p.model, p.train
device = resolve_device(p.device, key="rpca.device", log=log)


def samples(path):
    d = load_split(path)
    return tuple(as_samples(a, mode) for a in (d.x, d.low_rank, d.sparse))


train, val = samples(snakemake.input.train), samples(snakemake.input.val)
batch = p.batch_size[mode]
arch = dict(
    n_layers=m["n_layers"], prox=prox, mode=mode, kernel_size=m["kernel_size"], step=m["step"]
)

# the untrained baseline: K iterations of ISTA-RPCA with thresholds tuned on validation data
n_tune = min(len(val[0]), p.tune["max_samples"][mode])
lam_low, lam_sparse, grid = tune_untrained(
    *(a[:n_tune] for a in val),
    **arch,
    lowrank_factors=p.tune["lowrank_factors"],
    sparse_factors=p.tune["sparse_factors"],
    batch_size=batch,
    device=device,
)
log.info("untrained ISTA-RPCA: lambda_L = %.4g, lambda_S = %.4g", lam_low, lam_sparse)
tuned = initial_thresholds("tuned", m["step"], lam_low, lam_sparse)
untrained = UnfoldedRPCA(**arch, lowrank_threshold=tuned[0], sparse_threshold=tuned[1])

mu1, mu2 = initial_thresholds(m["threshold_init"], m["step"], lam_low, lam_sparse)
model = UnfoldedRPCA(
    **arch, lowrank_threshold=mu1, sparse_threshold=mu2, threshold_param=m["threshold_param"]
)
log.info(
    "training %s/%s: %d trainable parameters, %d train / %d val samples",
    mode,
    prox,
    count_parameters(model),
    len(train[0]),
    len(val[0]),
)

bar = tqdm(total=t["epochs"], desc=f"rpca {mode}/{prox}")


def progress(rec):
    bar.update(1)
    log.info("epoch %d: train %.5g, val %.5g", rec["epoch"], rec["train_loss"], rec["val_loss"])


result = train_unfolded(
    model,
    train,
    val,
    epochs=t["epochs"],
    batch_size=batch,
    lr=t["lr"],
    patience=t["patience"],
    seed=p.seed,
    progress=progress,
    device=device,
)
bar.close()
model.cpu()  # the checkpoint holds CPU tensors on every device
write_table(history_table(result.history), snakemake.output.history)
write_table(
    pd.DataFrame(grid, columns=["lambda_low", "lambda_sparse", "val_loss"]), snakemake.output.tuning
)
save_model(model, snakemake.output.model)
save_model(untrained, snakemake.output.untrained)
