"""Write results/figures/all: every figure of the enabled stages with its size and sha256."""

import json

from deepunfold.pipeline.jobs import setup_job
from deepunfold.pipeline.manifest import write_manifest

log = setup_job(snakemake.log[0], snakemake.threads)
manifest = write_manifest(
    snakemake.input.figures, json.loads(snakemake.params.config), snakemake.output[0]
)
log.info("manifest lists %d files", manifest["n_files"])
