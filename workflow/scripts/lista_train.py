"""Task 3: layer-wise training of one learned model (LISTA, LISTA-CP or ALISTA) on one setting."""

import pandas as pd
import torch
from tqdm import tqdm

from deepunfold.data.sparse_signals import load_problem
from deepunfold.pipeline.device import resolve_device
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job
from deepunfold.train.checkpoint import save_model
from deepunfold.train.loop import count_parameters
from deepunfold.unfolded.lista import TrainConfig, build_model, layer_metrics, train_layerwise

p = snakemake.params
out = snakemake.output
name = snakemake.wildcards.model
log = setup_job(snakemake.log[0], snakemake.threads, seed=p.seed)
torch.set_num_threads(snakemake.threads)
device = resolve_device(p.device, key="lista.device", log=log)
problem = load_problem(snakemake.input.data)
model = build_model(
    name,
    problem.A,
    p.depth,
    lam=p.lam,
    support_selection=p.support_selection,
    percent_step=p.percent_step,
    percent_max=p.percent_max,
)
log.info("%s, %d layers, %d trainable parameters", name, p.depth, count_parameters(model))
cfg = TrainConfig(**p.training, seed=p.seed)
bar = tqdm(total=p.depth * (1 + len(cfg.lr_decays)), desc=f"{name} stages")


def progress(message):
    bar.update(1)
    bar.set_postfix_str(message)
    log.info(message)


result = train_layerwise(
    model,
    problem.split("train"),
    problem.split("val"),
    cfg,
    test=problem.split("test"),
    progress=progress,
    device=device,
)
bar.close()
final = layer_metrics(model, *(a.to(device) for a in problem.split("test")))
model.cpu()  # the checkpoint holds CPU tensors on every device
layers = pd.DataFrame(result.metrics["layers"]).merge(
    final.rename(
        columns={"nmse_db": "final_test_nmse_db", "fraction_zeros": "final_test_fraction_zeros"}
    ),
    on="layer",
)
log.info("per layer:\n%s", layers.to_string())
save_model(model, out.model, setting=snakemake.wildcards.setting)
write_table(pd.DataFrame(result.history).assign(model=name), out.history)
write_table(layers.assign(model=name), out.layers)
