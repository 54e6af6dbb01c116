"""Task 3: trainable-parameter table of every trained model (ISTA and FISTA have none)."""

import pandas as pd

from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.unfolded.lista import parameter_table

log = setup_job(snakemake.log[0], snakemake.threads)
table = parameter_table(snakemake.input.models)
log.info("parameters:\n%s", table.to_string())
write_table(pd.DataFrame(table), snakemake.output.table)
