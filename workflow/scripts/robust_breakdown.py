"""Task 1: estimation error against outlier magnitude and against the number of outliers."""

from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.figures.robust import plot_breakdown
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.studies.robust_location import breakdown_sweep

log = setup_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
b = p.breakdown
by_magnitude, by_count = breakdown_sweep(
    true_value=p.true_value,
    n_obs=b["n_obs"],
    noise_std=b["noise_std"],
    eps=b["l0_tolerance"],
    magnitudes=b["magnitudes"],
    n_outliers_fixed=b["n_outliers"],
    magnitude_fixed=b["magnitude"],
    n_trials=b["n_trials"],
    seed=p.seed,
)
log.info("error vs number of outliers:\n%s", by_count.to_string())
fig = plot_breakdown(by_magnitude, by_count, b["n_outliers"], b["magnitude"])
demo_note(fig, p.label)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
write_table(by_magnitude, snakemake.output.by_magnitude)
write_table(by_count, snakemake.output.by_count)
