"""Task 3 in the DAG: one job per (setting, model), tables that agree with the models."""

import json

import pandas as pd
import pytest
from helpers import DEMO, copy_workflow, job_counts, snakemake

pytestmark = pytest.mark.pipeline


def test_lista_dry_run_job_counts(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    proc = snakemake(
        wd,
        *DEMO,
        "--dry-run",
        "results/lista/parameters.tsv",
        "results/figures/lista/ista_losses.png",
    )
    counts = job_counts(proc.stdout)
    assert counts["lista_data"] == 3  # seed, snr40, noiseless
    assert counts["lista_train"] == 9  # 3 settings x 3 models
    assert counts["lista_sweep_data"] == counts["lista_ista_study"] == 1
    assert counts["lista_parameters"] == 1
    # one model alone is its own target: only its data and itself
    proc = snakemake(wd, *DEMO, "--dry-run", "results/lista/snr40/alista.pt")
    assert job_counts(proc.stdout) == {"lista_data": 1, "lista_train": 1, "total": 2}
    # disabling a model removes its jobs
    (wd / "no_lista.yaml").write_text("lista:\n  models:\n    lista:\n      enabled: false\n")
    proc = snakemake(
        wd,
        "--cores",
        "2",
        "--dry-run",
        "results/lista/parameters.tsv",
        "--configfile",
        "config/demo.yaml",
        "no_lista.yaml",
    )
    assert job_counts(proc.stdout)["lista_train"] == 6


@pytest.mark.parametrize(
    "override, key",
    [
        ("lista:\n  settings:\n    seed: {depth: 0}\n", "lista.settings.seed.depth"),
        ("lista:\n  settings:\n    snr40: {n_val: 5000}\n", "lista.settings.snr40.n_val"),
        ("lista:\n  sweep: {example_sparsity: 0.33}\n", "lista.sweep.example_sparsity"),
    ],
)
def test_bad_lista_config_stops_before_any_job(tmp_path, override, key):
    wd = copy_workflow(tmp_path / "wf")
    (wd / "bad.yaml").write_text(override)
    proc = snakemake(
        wd,
        "results/lista/parameters.tsv",
        "--cores",
        "2",
        "--configfile",
        "config/demo.yaml",
        "bad.yaml",
        check=False,
    )
    assert proc.returncode != 0
    assert f"'{key}'" in proc.stdout, proc.stdout[-3000:]
    assert not (wd / "results").exists()


def test_lista_demo_outputs(demo_run):
    wd, _ = demo_run
    manifest = json.loads((wd / "results/figures/all").read_text())
    paths = {f["path"] for f in manifest["files"]}
    for setting in ("seed", "snr40", "noiseless"):
        for name in ("training", "layers", "nmse_iterations"):
            assert f"results/figures/lista/{setting}/{name}.png" in paths
    params = pd.read_csv(wd / "results/lista/parameters.tsv", sep="\t")
    p = params.set_index(["setting", "method"])["trainable_parameters"]
    T, m, n = 4, 250, 500  # demo depth and the standard setting's size
    assert p["snr40", "lista_cp"] == T * (m * n + 1)
    assert p["snr40", "lista"] == T * (n * m + 1) + (T - 1) * n * n
    assert p["seed", "alista"] == 2 * T and p["seed", "ista"] == 0
    for setting in ("seed", "snr40", "noiseless"):
        s = pd.read_csv(wd / f"results/lista/{setting}/summary.tsv", sep="\t")
        s = s.set_index("method").test_nmse_db
        # after 4 layers the best learned network is ahead of 4 FISTA iterations
        assert min(s[["lista", "lista_cp", "alista"]]) < s["fista"] - 1.0, (setting, s)
