"""Download a torchvision data set into resources/, or fail naming the files to place."""

from deepunfold.jobs import setup_job
from deepunfold.resources import download_torchvision

log = setup_job(snakemake.log[0])
files = download_torchvision(snakemake.params.dataset, snakemake.params.root)
log.info("%s ready: %s", snakemake.params.dataset, ", ".join(map(str, files)))
