# Task 6: multi-layer sparse models (mutual coherence, ML-ISTA / ML-FISTA, the ML-ISTA net).


include: "helpers/multilayer.smk"


ML_CATEGORY = "Task 6: multi-layer sparse models"


rule multilayer_coherence:
    input:
        code=script_code("multilayer_coherence.py"),
    output:
        dictionaries="results/multilayer/coherence/dictionaries.tsv",
        recovery="results/multilayer/coherence/recovery.tsv",
        figure=report(
            "results/figures/multilayer/coherence_recovery.png",
            caption="../report/multilayer_coherence_recovery.rst",
            category=ML_CATEGORY,
        ),
        figure_pdf="results/figures/multilayer/coherence_recovery.pdf",
    log:
        "logs/multilayer/coherence.log",
    benchmark:
        "results/benchmarks/multilayer_coherence.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        coherence=config["multilayer"]["coherence"],
        seed=config["seed"],
        label=config["run_label"],
    script:
        "../scripts/multilayer_coherence.py"


rule multilayer_pursuits:
    input:
        code=script_code("multilayer_pursuits.py"),
    output:
        table="results/multilayer/pursuits/errors.tsv",
        figure=report(
            "results/figures/multilayer/pursuit_errors.png",
            caption="../report/multilayer_pursuit_errors.rst",
            category=ML_CATEGORY,
        ),
        figure_pdf="results/figures/multilayer/pursuit_errors.pdf",
    log:
        "logs/multilayer/pursuits.log",
    benchmark:
        "results/benchmarks/multilayer_pursuits.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        model=config["multilayer"]["model"],
        pursuits=config["multilayer"]["pursuits"],
        seed=config["seed"],
        label=config["run_label"],
    script:
        "../scripts/multilayer_pursuits.py"


rule multilayer_forward_support:
    input:
        code=script_code("multilayer_forward_support.py"),
    output:
        table="results/multilayer/pursuits/forward_support.tsv",
        figure=report(
            "results/figures/multilayer/forward_support.png",
            caption="../report/multilayer_forward_support.rst",
            category=ML_CATEGORY,
        ),
        figure_pdf="results/figures/multilayer/forward_support.pdf",
    log:
        "logs/multilayer/forward_support.log",
    benchmark:
        "results/benchmarks/multilayer_forward_support.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        model=config["multilayer"]["model"],
        forward=config["multilayer"]["forward_support"],
        seed=config["seed"],
        label=config["run_label"],
    script:
        "../scripts/multilayer_forward_support.py"


rule multilayer_train:
    input:
        code=script_code("multilayer_train.py"),
        data=multilayer_data,
    output:
        summary="results/multilayer/mlista_net/k{k}/summary.tsv",
        history="results/multilayer/mlista_net/k{k}/history.tsv",
    log:
        "logs/multilayer/train_k{k}.log",
    benchmark:
        "results/benchmarks/multilayer_train_k{k}.tsv"
    wildcard_constraints:
        k=r"\d+",
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=720,  # k = 6: ~7.4 core-hours on the CPU (docs/gpu.md)
    params:
        network=multilayer_network_params(),
        mnist_root="resources/mnist",
        seed=config["seed"],
    script:
        "../scripts/multilayer_train.py"


rule multilayer_unfolding:
    input:
        code=script_code("multilayer_unfolding.py"),
        summaries=multilayer_trained("summary"),
        histories=multilayer_trained("history"),
    output:
        table="results/multilayer/mlista_net/accuracy.tsv",
        figure=report(
            "results/figures/multilayer/unfolding_accuracy.png",
            caption="../report/multilayer_unfolding_accuracy.rst",
            category=ML_CATEGORY,
        ),
        figure_pdf="results/figures/multilayer/unfolding_accuracy.pdf",
    log:
        "logs/multilayer/unfolding.log",
    benchmark:
        "results/benchmarks/multilayer_unfolding.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        label=config["run_label"],
    script:
        "../scripts/multilayer_unfolding.py"
