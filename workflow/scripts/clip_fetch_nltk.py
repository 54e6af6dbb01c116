"""Fetch NLTK's English POS tagger and stopwords, or fail naming the files to place."""

from deepunfold.clip.concepts import fetch_nltk_data
from deepunfold.pipeline.jobs import setup_job

log = setup_job(snakemake.log[0])
log.info("NLTK data ready: %s", fetch_nltk_data(snakemake.params.root))
