"""LRPCA: layer-wise training then fine-tuning, on the moving digits of one arrangement
(frame or video) or on fresh synthetic low-rank-plus-sparse matrices (the paper's problems).
"""

import pandas as pd
import torch

from deepunfold.data.moving_digits import load_split
from deepunfold.pipeline.device import resolve_device
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.train.checkpoint import save_model
from deepunfold.unfolded.lrpca import LRPCA, synthetic_problems, train_lrpca
from deepunfold.unfolded.rpca import as_matrix, as_samples

p = snakemake.params
c, t = p.lrpca, p.lrpca["train"]
setting = snakemake.wildcards.setting
log = setup_job(snakemake.log[0], snakemake.threads, seed=t["seed"])
device = resolve_device(p.device, key="rpca.device", log=log)

if setting == "synthetic":
    syn = c["synthetic"]
    rank = syn["rank"]

    def problems(batch, seed):  # drawn on the CPU: the same problems on every device
        g = torch.Generator().manual_seed(seed)
        drawn = synthetic_problems(batch, syn["n"], rank, syn["alpha"], generator=g)
        return tuple(a.to(device) for a in drawn)

    val = problems(syn["n_val"], 10_000 + syn["seed"])  # the test set: 20_000 + seed

    def draw(i):  # training batch number i: fresh problems
        return problems(t["batch"], 1_000_000 * (1 + t["seed"]) + i)

    log.info("synthetic: n = %d, rank %d, outliers %.2f", syn["n"], rank, syn["alpha"])
else:
    rank = p.rank

    def matrices(path):
        d = load_split(path)
        return tuple(
            as_matrix(as_samples(a, setting), setting).to(torch.float64).to(device)
            for a in (d.x, d.low_rank, d.sparse)
        )

    train, val = matrices(snakemake.input.train), matrices(snakemake.input.val)
    shape = tuple(train[0].shape[1:])

    def draw(i):  # training batch number i: random training matrices
        g = torch.Generator().manual_seed(1_000_000 * (1 + t["seed"]) + i)
        idx = torch.randint(len(train[0]), (t["batch"],), generator=g)
        return tuple(a[idx.to(device)] for a in train)

    log.info("%s: %d training matrices of %s, rank %d", setting, len(train[0]), shape, rank)

model = LRPCA(
    c["n_layers"],
    threshold_init=c["threshold_init"],
    threshold_decay=c["threshold_decay"],
    step_init=c["step_init"],
    svd=c["svd"],
    output=c["output"],
).to(device)


def progress(rec):
    log.info("stage %d %s: val loss %.4g", rec["stage"], rec["phase"], rec["val_loss"])


result = train_lrpca(
    model,
    draw,
    val,
    rank,
    layer_steps=t["layer_steps"],
    finetune_steps=t["finetune_steps"],
    lr=t["lr"],
    eval_every=t["eval_every"],
    seed=t["seed"],
    progress=progress,
)
model.cpu()
rows = []
for rec in result.metrics["stages"]:
    row = {k: rec[k] for k in ("stage", "phase", "steps", "val_loss")}
    row.update({f"zeta_{k - 1}": z for k, z in enumerate(rec["thresholds"])})
    row.update({f"eta_{k + 1}": e for k, e in enumerate(rec["eta"])})
    rows.append(row)
write_table(pd.DataFrame(rows), snakemake.output.history)
save_model(model, snakemake.output.model, setting=setting, rank=rank)
zeta = model.thresholds(model.n_layers).tolist()
steps = model.trained_steps().tolist()
log.info("thresholds %s; steps %s; tail decay %.3g", zeta, steps, model.tail_decay())
