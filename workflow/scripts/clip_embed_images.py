"""Embed the image set once into the Parquet cache (batched, inference mode)."""

from functools import partial

from tqdm import tqdm

from deepunfold.clip.cache import write_embeddings
from deepunfold.clip.embed import (
    class_names,
    encode_images,
    image_dataset,
    load_model,
    preprocessing_description,
)
from deepunfold.pipeline.device import resolve_device
from deepunfold.pipeline.jobs import setup_job
from deepunfold.pipeline.manifest import sha256

p = snakemake.params
log = setup_job(snakemake.log[0], snakemake.threads, p.seed)
inp = snakemake.input
device = resolve_device(p.device, key="clip.embed_device", log=log)
model, preprocess, _ = load_model(
    p.model, inp.weights, model_config=inp.get("model_config"), device=device
)
data, ids, desc = image_dataset(
    p.dataset, preprocess, cifar_root=p.cifar_root, test_fraction=p.test_fraction, seed=p.seed
)
log.info("embedding %s with %s", desc, p.model)
emb, labels = encode_images(
    model,
    data,
    batch_size=p.batch_size,
    progress=partial(tqdm, desc="images", mininterval=10),
    device=device,
    mixed_precision=p.mixed_precision,
)
classes = class_names(p.dataset)
write_embeddings(
    snakemake.output.cache,
    emb,
    kind="image",
    model=p.model,
    weights=f"{p.weights_label} (sha256 {sha256(inp.weights)})",
    preprocessing=preprocessing_description(preprocess),
    dataset=desc,
    ids=ids,
    names=[classes[k] for k in labels],
    labels=labels,
    extra={"classes": classes},
)
log.info("%d image embeddings of dimension %d written", *emb.shape)
