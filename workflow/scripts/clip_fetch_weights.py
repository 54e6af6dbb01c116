"""Fetch open_clip weights once into resources/, or fail naming the checkpoint to place."""

from deepunfold.clip.embed import fetch_weights
from deepunfold.pipeline.jobs import setup_job

log = setup_job(snakemake.log[0])
p = snakemake.params
out = fetch_weights(p.model, p.pretrained, snakemake.output.weights, p.cache_dir)
log.info("open_clip %s / %s saved to %s", p.model, p.pretrained, out)
