"""Download a torchvision data set into resources/, or fail naming the files to place."""

from deepunfold.pipeline.jobs import setup_job
from deepunfold.pipeline.resources import TORCHVISION, download_torchvision

log = setup_job(snakemake.log[0])
name = snakemake.params.dataset
part = getattr(snakemake.params, "part", "files")
# the data set's root is what precedes torchvision's own layout in the first output path
root = str(snakemake.output[0])[: -len(TORCHVISION[name][part][0]) - 1]
files = download_torchvision(name, root, part)
log.info("%s ready: %s", name, ", ".join(map(str, files)))
