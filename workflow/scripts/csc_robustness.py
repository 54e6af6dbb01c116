"""Task 7: test accuracy under Gaussian input noise, ResNet against SDNet with lambda as
trained and with lambda raised at test time (chosen per noise level on validation data)."""

from deepunfold.data.images import load_image_data
from deepunfold.figures.csc import plot_robustness
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.pipeline.device import resolve_device
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.studies.csc import robustness_study
from deepunfold.train.checkpoint import load_model
from deepunfold.unfolded.csc import ResNet

p = snakemake.params
log = setup_job(snakemake.log[0], snakemake.threads, seed=p.seed)
device = str(resolve_device(p.device, key="csc.train.device", log=log))
data = load_image_data(**p.data, root=p.cifar_root, seed=p.seed)
cnn, sdnet = (
    load_model(path, ResNet).to(device).eval()
    for path in (snakemake.input.cnn, snakemake.input.sdnet)
)

table, sweep = robustness_study(
    cnn, sdnet, data, p.robustness["noise_stds"], p.robustness["lambda_factors"], p.seed
)
for s, rows in table.groupby("noise_std", sort=False):
    acc = dict(zip(rows["model"], rows["test_accuracy"], strict=True))
    best = rows.loc[rows["model"] == "sdnet_tuned", "lambda"].iloc[0]
    log.info(
        "noise %.3g: cnn %.4f, sdnet %.4f, sdnet with lambda %.3g %.4f",
        s,
        acc["cnn"],
        acc["sdnet"],
        best,
        acc["sdnet_tuned"],
    )
log.info("robustness:\n%s", table.to_string(index=False))
fig = plot_robustness(table, sweep, data.name)
demo_note(fig, p.label)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
write_table(table, snakemake.output.table)
write_table(sweep, snakemake.output.sweep)
