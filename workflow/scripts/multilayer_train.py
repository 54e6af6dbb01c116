"""Task 6: train the ML-ISTA network with one number of unfoldings k (several repeats)."""

import pandas as pd
import torch

from deepunfold.data.digits import load_classification_digits
from deepunfold.pipeline.device import resolve_device
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.train.loop import count_parameters
from deepunfold.unfolded.mlista import MLISTANet, train_classifier

k = int(snakemake.wildcards.k)
net = snakemake.params.network
log = setup_job(snakemake.log[0], snakemake.threads, seed=snakemake.params.seed)
device = str(resolve_device(net["device"], key="multilayer.network.device", log=log))

try:
    data = load_classification_digits(
        net["dataset"],
        seed=snakemake.params.seed,
        test_fraction=net["test_fraction"],
        mnist_root=snakemake.params.mnist_root,
    )
except ValueError as err:
    raise ValueError(f"config key 'multilayer.network.dataset': {err}") from None
log.info(
    "%s: %d train / %d test images of shape %s; k = %d; device %s",
    data.name,
    len(data.y_train),
    len(data.y_test),
    data.in_shape,
    k,
    device,
)

summary, history = [], []
for r in range(net["repeats"]):
    seed = snakemake.params.seed + 1000 * r
    torch.manual_seed(seed)
    model = MLISTANet(
        data.in_shape,
        net["channels"],
        net["kernel_sizes"],
        net["strides"],
        net["paddings"],
        n_classes=int(data.y_train.max()) + 1,
        unfoldings=k,
        init_threshold=net["init_threshold"],
        seed=seed,
    )
    res = train_classifier(
        model,
        data,
        epochs=net["epochs"],
        batch_size=net["batch_size"],
        lr=net["lr"],
        weight_decay=net["weight_decay"],
        seed=seed,
        device=device,
        progress=True,
    )
    test_acc, train_acc = res.metrics["test_accuracy"], res.metrics["train_accuracy"]
    log.info(
        "repeat %d: test accuracy %.4f, train accuracy %.4f, %.1f s",
        r,
        test_acc,
        train_acc,
        res.seconds,
    )
    summary.append(
        {
            "unfoldings": k,
            "repeat": r,
            "dataset": data.name,
            "n_parameters": count_parameters(model),
            "test_accuracy": test_acc,
            "train_accuracy": train_acc,
            "device": device,
        }
    )
    history += [{"unfoldings": k, "repeat": r} | h for h in res.history]

write_table(pd.DataFrame(history), snakemake.output.history)
write_table(pd.DataFrame(summary), snakemake.output.summary)
