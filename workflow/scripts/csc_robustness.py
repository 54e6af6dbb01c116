"""Task 7: test accuracy under Gaussian input noise, ResNet against SDNet with lambda as
trained and with lambda raised at test time (chosen per noise level on validation data)."""

import pandas as pd

from deepunfold.data.images import load_image_data
from deepunfold.figures.csc import plot_robustness
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.pipeline.device import resolve_device
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.train.loop import load_checkpoint
from deepunfold.unfolded.csc import accuracy, resnet, set_test_lambda

p = snakemake.params
log = setup_job(snakemake.log[0], snakemake.threads, seed=p.seed)
device = str(resolve_device(p.device, key="csc.train.device", log=log))
data = load_image_data(**p.data, root=p.cifar_root, seed=p.seed)
mean, std = data.channel_stats()


def trained(kind, path):
    model = resnet(kind, data.in_shape[0], data.n_classes, p.model["widths"], p.model["blocks"],
                   csc=p.model["csc"], mean=mean, std=std)  # fmt: skip
    load_checkpoint(path, model)
    return model.to(device).eval()


cnn, sdnet = trained("cnn", snakemake.input.cnn), trained("sdnet", snakemake.input.sdnet)
lam0 = float(f"{float(sdnet.stem.lam):.6g}")  # the float32 buffer, as written in the config
lambdas = sorted({lam0, *(lam0 * f for f in p.robustness["lambda_factors"])})
# distinct noise draws for validation and test; the same draw for every model and lambda
val_seed, test_seed = p.seed + 1, p.seed + 2


def score(model, split, noise_std, lam=None):
    """Accuracy on the noisy val or test images with the CSC layers' lambda set to ``lam``."""
    set_test_lambda(model, lam)
    x, y = (data.x_val, data.y_val) if split == "val" else (data.x_test, data.y_test)
    seed = val_seed if split == "val" else test_seed
    acc, _ = accuracy(model, x, y, noise_std=noise_std, seed=seed)
    set_test_lambda(model, None)
    return acc


def row(name, model, s, lam=None):
    """One table row; ``lam=None`` is the model's own (trained) lambda."""
    shown = float("nan") if model is cnn else lam0 if lam is None else lam
    return {"noise_std": s, "model": name, "lambda": shown,
            "val_accuracy": score(model, "val", s, lam),
            "test_accuracy": score(model, "test", s, lam)}  # fmt: skip


rows, sweep = [], []
for s in p.robustness["noise_stds"]:
    val = {lam: score(sdnet, "val", s, lam) for lam in lambdas}
    sweep += [{"noise_std": s, "lambda": lam, "val_accuracy": a} for lam, a in val.items()]
    best = max(lambdas, key=lambda lam, val=val: (val[lam], -lam))  # ties: the smaller
    rows += [row("cnn", cnn, s), row("sdnet", sdnet, s),
             row("sdnet_tuned", sdnet, s, best)]  # fmt: skip
    acc = [r["test_accuracy"] for r in rows[-3:]]
    log.info("noise %.3g: cnn %.4f, sdnet %.4f, sdnet with lambda %.3g %.4f", s, *acc[:2],
             best, acc[2])  # fmt: skip

table, sweep = pd.DataFrame(rows), pd.DataFrame(sweep)
log.info("robustness:\n%s", table.to_string(index=False))
fig = plot_robustness(table, sweep, data.name)
demo_note(fig, p.label)
save_figure(fig, snakemake.output.figure, snakemake.output.figure_pdf)
write_table(table, snakemake.output.table)
write_table(sweep, snakemake.output.sweep)
