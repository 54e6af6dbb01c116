"""Train the demo backbone (a tiny open_clip CLIP) on the training part of the digits."""

import json

import pandas as pd
import torch

from deepunfold.clip.embed import load_model
from deepunfold.clip.tinyclip import (
    TINYCLIP_NAME,
    DigitImages,
    TinyCLIP,
    tinyclip_config,
    train_tinyclip,
)
from deepunfold.data.digits import digit_images_split
from deepunfold.figures.clip import plot_tinyclip_training
from deepunfold.figures.plotting import demo_note, save_figure
from deepunfold.pipeline.device import resolve_device
from deepunfold.pipeline.io import atomic_path, write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.train.checkpoint import save_model

p = snakemake.params
log = setup_job(snakemake.log[0], snakemake.threads, p.seed)
t = p.tinyclip
device = resolve_device(t["device"], key="clip.tinyclip.device", log=log)
arch = {k: t[k] for k in ("embed_dim", "vision_width", "text_width", "text_layers")}
model = TinyCLIP(**arch)  # open_clip's CLIP, initialised from the global generator
_, preprocess, tokenizer = load_model(TINYCLIP_NAME, None, model_config=tinyclip_config(**arch))
images, labels, train_idx, _ = digit_images_split(p.test_fraction, p.seed)
data = DigitImages(images[train_idx], labels[train_idx], preprocess)
x = torch.stack([data[i][0] for i in range(len(data))])
log.info("training %s on %d digits, %d steps", TINYCLIP_NAME, len(train_idx), t["steps"])
result = train_tinyclip(
    model,
    tokenizer,
    x,
    images[train_idx],
    labels[train_idx],
    steps=t["steps"],
    batch_size=t["batch_size"],
    lr=t["lr"],
    seed=p.seed,
    progress=True,
    device=device,
)
losses = result.step_losses
model.cpu()  # the weights file holds CPU tensors on every device
log.info("loss: first %.3f, last 20 steps %.3f", losses[0], sum(losses[-20:]) / 20)

out = snakemake.output
# the one checkpoint format; open_clip reads its "state_dict" as a checkpoint of the
# architecture registered from model_config.json
save_model(model, out.weights, name=TINYCLIP_NAME)
cfg = {"name": TINYCLIP_NAME, "model_cfg": tinyclip_config(**model.config)}
with atomic_path(out.model_config) as tmp:
    tmp.write_text(json.dumps(cfg, indent=2) + "\n")
write_table(pd.DataFrame({"step": range(1, len(losses) + 1), "loss": losses}), out.losses)
fig = plot_tinyclip_training(losses, f"{len(train_idx)} training digits, {t['steps']} steps")
demo_note(fig, f"{p.label} - demo backbone (tiny CLIP trained on digits)")
save_figure(fig, out.figure, out.figure_pdf)
