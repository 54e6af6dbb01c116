"""Embed the class prompts or the concept vocabulary once into a Parquet cache."""

from functools import partial

from tqdm import tqdm

from deepunfold.clip.cache import write_embeddings
from deepunfold.clip.embed import class_names, encode_texts, load_model
from deepunfold.pipeline.device import resolve_device
from deepunfold.pipeline.io import read_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.pipeline.manifest import sha256

p = snakemake.params
log = setup_job(snakemake.log[0], snakemake.threads, p.seed)
inp = snakemake.input
device = resolve_device(p.device, key="clip.embed_device", log=log)
model, _, tokenizer = load_model(
    p.model, inp.weights, model_config=inp.get("model_config"), device=device
)
if snakemake.wildcards.texts == "classes":
    names, template = class_names(p.dataset), p.class_prompt
else:
    names, template = read_table(inp.vocabulary)["concept"].astype(str).tolist(), p.concept_prompt
prompts = [template.format(n) for n in names]
emb = encode_texts(
    model,
    tokenizer,
    prompts,
    batch_size=p.batch_size,
    progress=partial(tqdm, desc=snakemake.wildcards.texts, mininterval=10),
    device=device,
    mixed_precision=p.mixed_precision,
)
write_embeddings(
    snakemake.output.cache,
    emb,
    kind="text",
    model=p.model,
    weights=f"{p.weights_label} (sha256 {sha256(inp.weights)})",
    preprocessing=f"open_clip tokenizer of {p.model}; prompt {template!r}",
    dataset=f"{snakemake.wildcards.texts} of {p.dataset}",
    names=names,
    texts=prompts,
)
log.info("%d %s embedded, e.g. %r", len(names), snakemake.wildcards.texts, prompts[:3])
