"""Task 7: train one model of the pair, the ResNet (cnn) or the SDNet (sdnet)."""

import pandas as pd

from deepunfold.data.images import load_image_data
from deepunfold.pipeline.device import resolve_device
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.train.checkpoint import save_model
from deepunfold.train.loop import count_parameters
from deepunfold.unfolded.csc import resnet, train_image_classifier

p = snakemake.params
kind = snakemake.wildcards.model
log = setup_job(snakemake.log[0], snakemake.threads, seed=p.seed)
device = str(resolve_device(p.train["device"], key="csc.train.device", log=log))

data = load_image_data(**p.data, root=p.cifar_root, seed=p.seed)
mean, std = data.channel_stats()
model = resnet(
    kind,
    data.in_shape[0],
    data.n_classes,
    p.model["widths"],
    p.model["blocks"],
    csc=p.model["csc"],
    mean=mean,
    std=std,
    seed=p.seed,
)
n_params = count_parameters(model)
log.info(
    "%s: %d train / %d val / %d test images of shape %s; %s with %d parameters; device %s",
    data.name,
    len(data.y_train),
    len(data.y_val),
    len(data.y_test),
    data.in_shape,
    kind,
    n_params,
    device,
)
t = p.train
res = train_image_classifier(
    model,
    data,
    epochs=t["epochs"],
    batch_size=t["batch_size"],
    lr=t["lr"],
    optimizer=t["optimizer"],
    weight_decay=t["weight_decay"],
    augment=t["augment"],
    seed=p.seed,
    device=device,
    log=log,
)
val_acc, test_acc = res.metrics["val_accuracy"], res.metrics["test_accuracy"]
log.info(
    "%s: best epoch %d, val accuracy %.4f, test accuracy %.4f, %.1f s",
    kind,
    res.best_epoch,
    val_acc,
    test_acc,
    res.seconds,
)

save_model(model.cpu(), snakemake.output.model, kind=kind, n_parameters=n_params)
write_table(pd.DataFrame([{"model": kind} | h for h in res.history]), snakemake.output.history)
summary = {
    "model": kind,
    "dataset": data.name,
    "n_parameters": n_params,
    "val_accuracy": val_acc,
    "test_accuracy": test_acc,
    "best_epoch": res.best_epoch,
    "epochs": t["epochs"],
    "seconds": res.seconds,
    "device": device,
}
write_table(pd.DataFrame([summary]), snakemake.output.summary)
