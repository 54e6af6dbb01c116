"""Align images and concepts (centre + renormalise) and score the dense zero-shot baseline."""

import numpy as np
import pandas as pd

from deepunfold.clip.cache import read_embeddings
from deepunfold.clip.codes import zero_shot_predict
from deepunfold.clip.concepts import align
from deepunfold.pipeline.io import atomic_path, write_table
from deepunfold.pipeline.jobs import setup_job

log = setup_job(snakemake.log[0])
inp = snakemake.input
images = read_embeddings(inp.images, kind="image")
concepts = read_embeddings(inp.concepts, kind="text")
classes = read_embeddings(inp.classes, kind="text")
if not images.meta["model"] == concepts.meta["model"] == classes.meta["model"]:
    raise ValueError("the embedding caches come from different models; rebuild them")
al = align(images.embeddings, concepts.embeddings)
with atomic_path(snakemake.output.aligned) as tmp:
    with open(tmp, "wb") as f:
        np.savez(f, z=al.z, A=al.A, image_mean=al.image_mean, concept_mean=al.concept_mean)

import torch  # noqa: E402 - only the zero-shot test needs it

pred = zero_shot_predict(torch.from_numpy(images.embeddings), torch.from_numpy(classes.embeddings))
acc = float((pred.numpy() == images.labels).mean())
dense = pd.DataFrame(
    [
        {
            "n_images": len(images),
            "n_concepts": len(concepts),
            "dim": al.z.shape[1],
            "n_classes": len(classes),
            "accuracy": acc,
            "chance": 1 / len(classes),
            "model": images.meta["model"],
            "dataset": images.meta["dataset"],
        }
    ]
)
log.info("dense zero-shot accuracy %.4f on %d images", acc, len(images))
write_table(dense, snakemake.output.dense)
