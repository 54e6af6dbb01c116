"""Fetch the Flickr30k captions (Karpathy split file), or fail naming the file to place."""

from deepunfold.clip.concepts import fetch_karpathy_captions
from deepunfold.pipeline.jobs import setup_job

log = setup_job(snakemake.log[0])
log.info("captions ready: %s", fetch_karpathy_captions(snakemake.output.captions))
