# Task 7: convolutional sparse coding inside CNNs (slides seeds/003): SDNet's CSC layer as the
# first layer of a ResNet against the same ResNet, robustness to input noise, and Res-CSC.


include: "helpers/csc.smk"


rule csc_train:
    input:
        code=script_code("csc_train.py"),
        data=csc_data_files,
    output:
        model="results/csc/{model}/model.pt",
        history="results/csc/{model}/history.tsv",
        summary="results/csc/{model}/summary.tsv",
    log:
        "logs/csc/train_{model}.log",
    benchmark:
        "results/benchmarks/csc_train_{model}.tsv"
    wildcard_constraints:
        model="cnn|sdnet",
    conda:
        "../envs/deepunfold.yaml"
    threads: CSC["train"]["threads"]
    resources:
        mem_mb=16000,
        runtime=1440,  # ~29 core-hours on 4 threads (docs/gpu.md)
    params:
        data=csc_data(),
        model=CSC["model"],
        train=csc_train_params(),
        cifar_root=clip_cifar_root,
        seed=config["seed"],
    script:
        "../scripts/csc_train.py"


rule csc_compare:
    input:
        code=script_code("csc_compare.py"),
        summaries=expand("results/csc/{model}/summary.tsv", model=["cnn", "sdnet"]),
        histories=expand("results/csc/{model}/history.tsv", model=["cnn", "sdnet"]),
    output:
        table="results/csc/parameters.tsv",
        figure=report(
            "results/figures/csc/training.png",
            caption="../report/csc_training.rst",
            category=CSC_CATEGORY,
        ),
        figure_pdf="results/figures/csc/training.pdf",
    log:
        "logs/csc/compare.log",
    benchmark:
        "results/benchmarks/csc_compare.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        label=config["run_label"],
    script:
        "../scripts/csc_compare.py"


rule csc_robustness:
    input:
        code=script_code("csc_robustness.py"),
        cnn="results/csc/cnn/model.pt",
        sdnet="results/csc/sdnet/model.pt",
        data=csc_data_files,
    output:
        table="results/csc/robustness.tsv",
        sweep="results/csc/lambda_sweep.tsv",
        figure=report(
            "results/figures/csc/robustness.png",
            caption="../report/csc_robustness.rst",
            category=CSC_CATEGORY,
        ),
        figure_pdf="results/figures/csc/robustness.pdf",
    log:
        "logs/csc/robustness.log",
    benchmark:
        "results/benchmarks/csc_robustness.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: CSC["train"]["threads"]
    resources:
        mem_mb=16000,
        runtime=120,
    params:
        data=csc_data(),
        model=CSC["model"],
        robustness=CSC["robustness"],
        device=CSC["train"]["device"],
        cifar_root=clip_cifar_root,
        seed=config["seed"],
        label=config["run_label"],
    script:
        "../scripts/csc_robustness.py"


rule csc_rescsc_train:
    input:
        code=script_code("csc_rescsc_train.py"),
        data=csc_data_files,
    output:
        summary="results/csc/res_csc/{variant}/k{k}/summary.tsv",
        history="results/csc/res_csc/{variant}/k{k}/history.tsv",
    log:
        "logs/csc/res_csc_{variant}_k{k}.log",
    benchmark:
        "results/benchmarks/csc_rescsc_train_{variant}_k{k}.tsv"
    wildcard_constraints:
        variant="mlista|rescsc",
        k=r"\d+",
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=1200,  # k = 4: ~13.4 core-hours on the CPU (docs/gpu.md)
    params:
        data=csc_data(),
        network=csc_res_params(),
        cifar_root=clip_cifar_root,
        seed=config["seed"],
    script:
        "../scripts/csc_rescsc_train.py"


rule csc_rescsc:
    input:
        code=script_code("csc_rescsc.py"),
        summaries=csc_res_trained("summary"),
    output:
        table="results/csc/res_csc/accuracy.tsv",
        figure=report(
            "results/figures/csc/res_csc.png",
            caption="../report/csc_res_csc.rst",
            category=CSC_CATEGORY,
        ),
        figure_pdf="results/figures/csc/res_csc.pdf",
    log:
        "logs/csc/res_csc.log",
    benchmark:
        "results/benchmarks/csc_rescsc.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        label=config["run_label"],
    script:
        "../scripts/csc_rescsc.py"
