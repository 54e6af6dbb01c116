# Task 3: ISTA, FISTA and the learned family (LISTA, LISTA-CP, ALISTA).
#
#   results/lista/data/ista_sweep.npz          seed setting at every sparsity level
#   results/lista/data/{setting}.npz           dictionary + train/val/test pairs per setting
#   results/lista/{setting}/{model}.pt         one trained model per setting and model
#   results/figures/lista/...                  the ISTA study and per-setting figures


include: "helpers/lista.smk"


LISTA = config["lista"]
LISTA_SETTINGS = list(LISTA["settings"])
LISTA_MODELS = lista_models()
LISTA_CATEGORY = "Task 3: ISTA and LISTA"

# Checks between keys (lista.models, n_val < n_train, ...): check_cross_keys in
# deepunfold.pipeline.config, run by validate_config (common.smk) before any rule file.


rule lista_sweep_data:
    input:
        code=script_code("lista_sweep_data.py"),
    output:
        sweep="results/lista/data/ista_sweep.npz",
    log:
        "logs/lista/sweep_data.log",
    benchmark:
        "results/benchmarks/lista_sweep_data.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        sweep=LISTA["sweep"],
        seed=config["seed"] + LISTA["sweep"]["seed"],
    script:
        "../scripts/lista_sweep_data.py"


rule lista_ista_study:
    input:
        code=script_code("lista_ista_study.py"),
        sweep=rules.lista_sweep_data.output.sweep,
    output:
        table="results/lista/ista_study.tsv",
        losses=report(
            "results/figures/lista/ista_losses.png",
            caption="../report/lista_ista_losses.rst",
            category=LISTA_CATEGORY,
        ),
        losses_pdf="results/figures/lista/ista_losses.pdf",
        recovery=report(
            "results/figures/lista/ista_recovery.png",
            caption="../report/lista_ista_recovery.rst",
            category=LISTA_CATEGORY,
        ),
        recovery_pdf="results/figures/lista/ista_recovery.pdf",
        convergence=report(
            "results/figures/lista/ista_convergence.png",
            caption="../report/lista_ista_convergence.rst",
            category=LISTA_CATEGORY,
        ),
        convergence_pdf="results/figures/lista/ista_convergence.pdf",
    log:
        "logs/lista/ista_study.log",
    benchmark:
        "results/benchmarks/lista_ista_study.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        sweep=LISTA["sweep"],
        label=config["run_label"],
    script:
        "../scripts/lista_ista_study.py"


rule lista_data:
    input:
        code=script_code("lista_data.py"),
    output:
        data="results/lista/data/{setting}.npz",
    log:
        "logs/lista/data_{setting}.log",
    benchmark:
        "results/benchmarks/lista_data_{setting}.tsv"
    wildcard_constraints:
        setting="|".join(LISTA_SETTINGS),
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        setting=lista_setting,
        seed=lista_setting_seed,
    script:
        "../scripts/lista_data.py"


rule lista_baselines:
    input:
        code=script_code("lista_baselines.py"),
        data="results/lista/data/{setting}.npz",
    output:
        table="results/lista/{setting}/baselines.tsv",
    log:
        "logs/lista/baselines_{setting}.log",
    benchmark:
        "results/benchmarks/lista_baselines_{setting}.tsv"
    wildcard_constraints:
        setting="|".join(LISTA_SETTINGS),
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        lam=lista_setting_key("lam"),
        n_iter=lista_setting_key("baseline_iters"),
    script:
        "../scripts/lista_baselines.py"


rule lista_train:
    input:
        code=script_code("lista_train.py"),
        data="results/lista/data/{setting}.npz",
    output:
        model="results/lista/{setting}/{model}.pt",
        history="results/lista/{setting}/{model}_history.tsv",
        layers="results/lista/{setting}/{model}_layers.tsv",
    log:
        "logs/lista/train_{setting}_{model}.log",
    benchmark:
        "results/benchmarks/lista_train_{setting}_{model}.tsv"
    wildcard_constraints:
        setting="|".join(LISTA_SETTINGS),
        model="|".join(LISTA_MODELS),
    conda:
        "../envs/deepunfold.yaml"
    threads: LISTA["training"]["threads"]
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        depth=lista_setting_key("depth"),
        lam=LISTA["training"]["lambda_init"],
        seed=lista_setting_seed,
        device=LISTA["device"],
        support_selection=lista_support_selection,
        percent_step=LISTA["support_selection"]["percent_step"],
        percent_max=LISTA["support_selection"]["percent_max"],
        training={
            k: v
            for k, v in LISTA["training"].items()
            if k not in ("threads", "lambda_init")
        },
    script:
        "../scripts/lista_train.py"


rule lista_figures:
    input:
        code=script_code("lista_figures.py"),
        data="results/lista/data/{setting}.npz",
        baselines="results/lista/{setting}/baselines.tsv",
        histories=lista_model_outputs("history"),
        layers=lista_model_outputs("layers"),
    output:
        summary="results/lista/{setting}/summary.tsv",
        training=report(
            "results/figures/lista/{setting}/training.png",
            caption="../report/lista_training.rst",
            category=LISTA_CATEGORY,
            subcategory="setting {setting}",
        ),
        training_pdf="results/figures/lista/{setting}/training.pdf",
        layers=report(
            "results/figures/lista/{setting}/layers.png",
            caption="../report/lista_layers.rst",
            category=LISTA_CATEGORY,
            subcategory="setting {setting}",
        ),
        layers_pdf="results/figures/lista/{setting}/layers.pdf",
        iterations=report(
            "results/figures/lista/{setting}/nmse_iterations.png",
            caption="../report/lista_nmse_iterations.rst",
            category=LISTA_CATEGORY,
            subcategory="setting {setting}",
        ),
        iterations_pdf="results/figures/lista/{setting}/nmse_iterations.pdf",
    log:
        "logs/lista/figures_{setting}.log",
    benchmark:
        "results/benchmarks/lista_figures_{setting}.tsv"
    wildcard_constraints:
        setting="|".join(LISTA_SETTINGS),
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        models=LISTA_MODELS,
        depth=lista_setting_key("depth"),
        lam=lista_setting_key("lam"),
        label=config["run_label"],
    script:
        "../scripts/lista_figures.py"


rule lista_parameters:
    input:
        code=script_code("lista_parameters.py"),
        models=expand(
            "results/lista/{setting}/{model}.pt",
            setting=LISTA_SETTINGS,
            model=LISTA_MODELS,
        ),
    output:
        table="results/lista/parameters.tsv",
    log:
        "logs/lista/parameters.log",
    benchmark:
        "results/benchmarks/lista_parameters.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    script:
        "../scripts/lista_parameters.py"
