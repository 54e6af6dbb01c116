"""One image of the set beside its most weighted concepts (signed, ranked by |weight|)."""

import numpy as np
import torch

from deepunfold.clip.cache import read_embeddings
from deepunfold.clip.codes import read_codes, reconstruct, zero_shot_predict
from deepunfold.clip.embed import image_dataset
from deepunfold.figures.clip import plot_concept_panel
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.pipeline.jobs import setup_job

p = snakemake.params
log = setup_job(snakemake.log[0])
inp = snakemake.input
i = int(snakemake.wildcards.index)
csr, ids, labels, meta = read_codes(inp.codes)
if not 0 <= i < csr.shape[0]:
    raise ValueError(f"config key 'clip.panels.images': index {i} outside 0..{csr.shape[0] - 1}")
concepts = read_embeddings(inp.concepts, kind="text").names
classes = read_embeddings(inp.classes, kind="text")
data, _, _ = image_dataset(
    p.dataset, None, cifar_root=p.cifar_root, test_fraction=p.test_fraction, seed=p.seed
)
image, label = data[i]
w = csr[i].toarray().ravel().astype(np.float64)
al = np.load(inp.aligned)
mean = {"concept": al["concept_mean"], "image": al["image_mean"], "none": None}[
    meta["reconstruct_mean"]
]
z_hat = reconstruct(
    torch.from_numpy(w)[None],
    torch.from_numpy(al["A"]),
    None if mean is None else torch.from_numpy(mean),
)
pred = int(zero_shot_predict(z_hat, torch.from_numpy(classes.embeddings))[0])
title = (
    f"image {i} (id {ids[i]}): {classes.names[label]}\n"
    f"sparse prediction at λ={meta['lambda']:g}: {classes.names[pred]}"
)
fig = plot_concept_panel(np.asarray(image), concepts, w, title, p.top_k)
fig.suptitle(
    f"Concept decomposition of one image ({meta['model']}, λ={meta['lambda']:g})", fontsize=10
)
demo_note(fig, p.note)
log.info("figure note: %s", p.note)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
log.info("panel of image %d: %d active concepts", i, int((w != 0).sum()))
