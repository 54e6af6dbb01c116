"""Task 7: train the multi-layer network of task 6 with k unfoldings, plain (mlista) or with
Res-CSC's initialisation (rescsc), several repeats."""

import pandas as pd
import torch

from deepunfold.data.images import load_image_data
from deepunfold.pipeline.device import resolve_device
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.train.loop import count_parameters
from deepunfold.unfolded.csc import ResCSCNet, train_image_classifier
from deepunfold.unfolded.mlista import MLISTANet

p = snakemake.params
k, variant = int(snakemake.wildcards.k), snakemake.wildcards.variant
net = p.network
log = setup_job(snakemake.log[0], snakemake.threads, seed=p.seed)
device = str(resolve_device(net["device"], key="csc.res_csc.device", log=log))
# the ML-ISTA net has no input normalisation of its own: standardised images
data = load_image_data(**p.data, root=p.cifar_root, seed=p.seed).standardised()
cls = {"mlista": MLISTANet, "rescsc": ResCSCNet}[variant]
log.info("%s: %s with %d unfoldings, device %s", data.name, cls.__name__, k, device)

summary, history = [], []
for r in range(net["repeats"]):
    seed = p.seed + 1000 * r
    torch.manual_seed(seed)
    model = cls(
        data.in_shape,
        net["channels"],
        net["kernel_sizes"],
        net["strides"],
        net["paddings"],
        n_classes=data.n_classes,
        unfoldings=k,
        init_threshold=net["init_threshold"],
        seed=seed,
    )
    if r == 0 and variant == "rescsc":
        log.info("layers starting from the code two layers back: %s", model.skip_layers())
    res = train_image_classifier(
        model,
        data,
        epochs=net["epochs"],
        batch_size=net["batch_size"],
        lr=net["lr"],
        optimizer="adam",
        weight_decay=net["weight_decay"],
        seed=seed,
        device=device,
    )
    val_acc, test_acc = res.metrics["val_accuracy"], res.metrics["test_accuracy"]
    log.info(
        "repeat %d: val accuracy %.4f, test accuracy %.4f, %.1f s",
        r,
        val_acc,
        test_acc,
        res.seconds,
    )
    summary.append(
        {
            "variant": variant,
            "unfoldings": k,
            "repeat": r,
            "dataset": data.name,
            "n_parameters": count_parameters(model),
            "val_accuracy": val_acc,
            "test_accuracy": test_acc,
            "device": device,
        }
    )
    history += [{"variant": variant, "unfoldings": k, "repeat": r} | h for h in res.history]

write_table(pd.DataFrame(history), snakemake.output.history)
write_table(pd.DataFrame(summary), snakemake.output.summary)
