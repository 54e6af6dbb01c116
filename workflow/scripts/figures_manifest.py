"""Write results/figures/all: every figure of the enabled stages with its size and sha256,
and the device each PyTorch job logged."""

import json

from deepunfold.pipeline.jobs import setup_job
from deepunfold.pipeline.manifest import write_manifest

log = setup_job(snakemake.log[0], snakemake.threads)
manifest = write_manifest(
    snakemake.input.figures,
    json.loads(snakemake.params.config),
    snakemake.output[0],
    logs="logs",  # the "device: " line of each PyTorch job's log, under "devices"
)
log.info(
    "manifest lists %d files; %d jobs logged their device",
    manifest["n_files"],
    len(manifest["devices"]),
)
