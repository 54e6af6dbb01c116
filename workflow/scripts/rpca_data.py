"""Tasks 4/5: moving digits on a noisy low-rank background, train/val/test splits saved once."""

from deepunfold.data.moving_digits import (
    load_mnist_digits,
    load_sklearn_digits,
    make_moving_digits,
    save_split,
)
from deepunfold.pipeline.jobs import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
c = dict(snakemake.params.data)
source, seed = c.pop("digits"), c.pop("seed")
counts = {split: c.pop(f"n_{split}") for split in ("train", "val", "test")}
if source == "mnist":
    # train/val digits from MNIST's training set, test digits from its test set
    pools = {"train": load_mnist_digits(snakemake.params.mnist_root, train=True)}
    pools["val"], pools["test"] = (
        pools["train"],
        load_mnist_digits(snakemake.params.mnist_root, train=False),
    )
    if c["digit_size"] != 28:
        raise ValueError("config key 'rpca.data.digit_size': MNIST digits are 28 px")
elif source == "sklearn":
    import numpy as np

    digits = load_sklearn_digits(c["digit_size"])
    # disjoint digit pools: the test set never shows a training digit
    order = np.random.default_rng(seed).permutation(len(digits))
    cut = int(0.8 * len(digits))
    pools = {"train": digits[order[:cut]], "val": digits[order[:cut]], "test": digits[order[cut:]]}
else:
    raise ValueError(f"config key 'rpca.data.digits': unknown source {source!r}")
c.pop("digit_size")

for offset, split in enumerate(("train", "val", "test")):
    data = make_moving_digits(pools[split], counts[split], seed=seed + 1000 * offset, **c)
    log.info(
        "%s: %d sequences, x %s, rms %.3f, digit pixels %.1f%%",
        split, counts[split], data.x.shape, (data.x**2).mean() ** 0.5,
        100 * (data.sparse > 0).mean(),
    )  # fmt: skip
    save_split(data, snakemake.output[split])
