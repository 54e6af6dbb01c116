"""Tasks 4/5: moving digits on a noisy low-rank background, train/val/test splits saved once."""

from deepunfold.data.moving_digits import digit_pools, make_moving_digits, save_split
from deepunfold.pipeline.jobs import setup_job

log = setup_job(snakemake.log[0], snakemake.threads)
c = dict(snakemake.params.data)
source, seed, digit_size = c.pop("digits"), c.pop("seed"), c.pop("digit_size")
counts = {split: c.pop(f"n_{split}") for split in ("train", "val", "test")}
try:
    pools = digit_pools(
        source, seed=seed, digit_size=digit_size, mnist_root=snakemake.params.mnist_root
    )
except ValueError as err:
    raise ValueError(f"config key 'rpca.data': {err}") from None

for offset, split in enumerate(("train", "val", "test")):
    data = make_moving_digits(pools[split], counts[split], seed=seed + 1000 * offset, **c)
    log.info(
        "%s: %d sequences, x %s, rms %.3f, digit pixels %.1f%%",
        split,
        counts[split],
        data.x.shape,
        (data.x**2).mean() ** 0.5,
        100 * (data.sparse > 0).mean(),
    )
    save_split(data, snakemake.output[split])
