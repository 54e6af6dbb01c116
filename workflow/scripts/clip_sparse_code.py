"""Sparse concept codes of every image at one lambda, stored sparsely, with their quality."""

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from deepunfold.clip.cache import read_embeddings
from deepunfold.clip.codes import reconstruct, sparse_code, write_codes, zero_shot_predict
from deepunfold.pipeline.device import resolve_device
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job

p = snakemake.params
log = setup_job(snakemake.log[0], snakemake.threads)
lam = float(snakemake.wildcards.lam)
inp = snakemake.input
al = np.load(inp.aligned)
images = read_embeddings(inp.images, kind="image")
classes = read_embeddings(inp.classes, kind="text")
# clip.device: auto = CUDA where torch.cuda.is_available(), else the CPU
device = resolve_device(p.device, key="clip.device", log=log)
z = torch.from_numpy(al["z"]).to(device)
A = torch.from_numpy(al["A"]).to(device)
bar = tqdm(total=len(z), desc=f"lambda={lam:g}", mininterval=10)
res = sparse_code(
    z,
    A,
    lam,
    solver=p.solver,
    nonneg=p.nonneg,
    step=p.step,
    max_iter=p.max_iter,
    tol=p.tol,
    chunk_size=p.chunk_size,
    threads=snakemake.threads,
    progress=bar.update,
)
bar.close()
res.w, res.objective, res.kkt, res.gap = (t.cpu() for t in (res.w, res.objective, res.kkt, res.gap))
A = A.cpu()
mean = {"concept": al["concept_mean"], "image": al["image_mean"], "none": None}[p.reconstruct_mean]
z_hat = reconstruct(res.w, A, None if mean is None else torch.from_numpy(mean))
pred = zero_shot_predict(z_hat, torch.from_numpy(classes.embeddings)).numpy()
acc = float((pred == images.labels).mean())
summary = {
    "lambda": lam,
    "solver": p.solver,
    "nonneg": p.nonneg,
    "mean_nnz": float(res.nnz.double().mean()),
    "accuracy": acc,
    "objective_mean": float(res.objective.mean()),
    "kkt_max": float(res.kkt.max()),
    "gap_max": float(res.gap.max()),
    "gap_median": float(res.gap.median()),
    "n_iter": res.n_iter,
}
# the wall time goes to the log (and the job's benchmark file), not to the results: it would
# make the table, and the codes' Parquet metadata, differ between otherwise identical runs
log.info("%s; solved in %.2f s", summary, res.seconds)
write_codes(
    snakemake.output.codes,
    res.w,
    images.ids,
    images.labels,
    dict(
        summary,
        reconstruct_mean=p.reconstruct_mean,
        model=images.meta["model"],
        dataset=images.meta["dataset"],
    ),
)
write_table(pd.DataFrame([summary]), snakemake.output.summary)
