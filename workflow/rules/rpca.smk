# Tasks 4 and 5: learned robust PCA by unfolding (L1 and mixed L1,2 sparse branch), on
# moving digits over a noisy low-rank background, in the frame and video arrangements.


include: "helpers/rpca.smk"


RPCA_VARIANT = {"mode": "frame|video", "prox": "l1|l12"}


rule rpca_data:
    input:
        code=script_code("rpca_data.py"),
        digits=rpca_digit_files,
    output:
        train="results/rpca/data/train.npz",
        val="results/rpca/data/val.npz",
        test="results/rpca/data/test.npz",
    log:
        "logs/rpca/data.log",
    benchmark:
        "results/benchmarks/rpca_data.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        data=config["rpca"]["data"],
        mnist_root="resources/mnist",
    script:
        "../scripts/rpca_data.py"


rule rpca_pcp:
    input:
        code=script_code("rpca_pcp.py"),
        test="results/rpca/data/test.npz",
    output:
        metrics="results/rpca/{mode}/pcp/metrics.tsv",
        examples="results/rpca/{mode}/pcp/examples.npz",
        timing="results/benchmarks/rpca/{mode}_pcp_time_per_sample.tsv",
    log:
        "logs/rpca/{mode}/pcp.log",
    benchmark:
        "results/benchmarks/rpca_pcp_{mode}.tsv"
    wildcard_constraints:
        mode=RPCA_VARIANT["mode"],
    conda:
        "../envs/deepunfold.yaml"
    # one thread: the time per sample is compared with the learned models'
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        pcp=config["rpca"]["pcp"],
        batch_size=rpca_batch_size(),
        rank_rtol=config["rpca"]["evaluate"]["rank_rtol"],
        n_examples=config["rpca"]["evaluate"]["n_examples"],
    script:
        "../scripts/rpca_pcp.py"


rule rpca_train:
    input:
        code=script_code("rpca_train.py"),
        train="results/rpca/data/train.npz",
        val="results/rpca/data/val.npz",
    output:
        model="results/rpca/{mode}/{prox}/model.pt",
        untrained="results/rpca/{mode}/{prox}/untrained.pt",
        history="results/rpca/{mode}/{prox}/history.tsv",
        tuning="results/rpca/{mode}/{prox}/tuning.tsv",
    log:
        "logs/rpca/{mode}/{prox}/train.log",
    benchmark:
        "results/benchmarks/rpca_train_{mode}_{prox}.tsv"
    wildcard_constraints:
        **RPCA_VARIANT,
    conda:
        "../envs/deepunfold.yaml"
    threads: config["rpca"]["train"]["threads"]
    resources:
        mem_mb=8000,
        runtime=600,
    params:
        model=config["rpca"]["model"],
        train=config["rpca"]["train"],
        tune=config["rpca"]["tune"],
        batch_size=rpca_batch_size(),
        seed=config["rpca"]["train"]["seed"],
        device=config["rpca"]["device"],
    script:
        "../scripts/rpca_train.py"


rule rpca_evaluate:
    input:
        code=script_code("rpca_evaluate.py"),
        test="results/rpca/data/test.npz",
        model="results/rpca/{mode}/{prox}/model.pt",
        untrained="results/rpca/{mode}/{prox}/untrained.pt",
    output:
        metrics="results/rpca/{mode}/{prox}/metrics.tsv",
        thresholds="results/rpca/{mode}/{prox}/thresholds.tsv",
        layers="results/rpca/{mode}/{prox}/layers.npz",
        examples="results/rpca/{mode}/{prox}/examples.npz",
        timing="results/benchmarks/rpca/{mode}_{prox}_time_per_sample.tsv",
    log:
        "logs/rpca/{mode}/{prox}/evaluate.log",
    benchmark:
        "results/benchmarks/rpca_evaluate_{mode}_{prox}.tsv"
    wildcard_constraints:
        **RPCA_VARIANT,
    conda:
        "../envs/deepunfold.yaml"
    # one thread: the time per sample is compared with PCP's
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        batch_size=rpca_batch_size(),
        rank_rtol=config["rpca"]["evaluate"]["rank_rtol"],
        timing_repeats=config["rpca"]["evaluate"]["timing_repeats"],
        n_examples=config["rpca"]["evaluate"]["n_examples"],
        device=config["rpca"]["device"],
    script:
        "../scripts/rpca_evaluate.py"


rule rpca_figures:
    input:
        code=script_code("rpca_figures.py"),
        history="results/rpca/{mode}/{prox}/history.tsv",
        thresholds="results/rpca/{mode}/{prox}/thresholds.tsv",
        layers="results/rpca/{mode}/{prox}/layers.npz",
        examples="results/rpca/{mode}/{prox}/examples.npz",
        pcp_metrics="results/rpca/{mode}/pcp/metrics.tsv",
        pcp_examples="results/rpca/{mode}/pcp/examples.npz",
    output:
        loss=report(
            "results/figures/rpca/{mode}_{prox}/loss.png",
            caption="../report/rpca_loss.rst",
            category="Tasks 4 and 5: learned RPCA",
            subcategory="{mode} arrangement, {prox}",
        ),
        loss_pdf="results/figures/rpca/{mode}_{prox}/loss.pdf",
        thresholds=report(
            "results/figures/rpca/{mode}_{prox}/thresholds.png",
            caption="../report/rpca_thresholds.rst",
            category="Tasks 4 and 5: learned RPCA",
            subcategory="{mode} arrangement, {prox}",
        ),
        thresholds_pdf="results/figures/rpca/{mode}_{prox}/thresholds.pdf",
        singular_values=report(
            "results/figures/rpca/{mode}_{prox}/singular_values.png",
            caption="../report/rpca_singular_values.rst",
            category="Tasks 4 and 5: learned RPCA",
            subcategory="{mode} arrangement, {prox}",
        ),
        singular_values_pdf="results/figures/rpca/{mode}_{prox}/singular_values.pdf",
        sparsity=report(
            "results/figures/rpca/{mode}_{prox}/sparsity.png",
            caption="../report/rpca_sparsity.rst",
            category="Tasks 4 and 5: learned RPCA",
            subcategory="{mode} arrangement, {prox}",
        ),
        sparsity_pdf="results/figures/rpca/{mode}_{prox}/sparsity.pdf",
        examples=report(
            "results/figures/rpca/{mode}_{prox}/examples.png",
            caption="../report/rpca_examples.rst",
            category="Tasks 4 and 5: learned RPCA",
            subcategory="{mode} arrangement, {prox}",
        ),
        examples_pdf="results/figures/rpca/{mode}_{prox}/examples.pdf",
    log:
        "logs/rpca/{mode}/{prox}/figures.log",
    benchmark:
        "results/benchmarks/rpca_figures_{mode}_{prox}.tsv"
    wildcard_constraints:
        **RPCA_VARIANT,
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        example_frame=config["rpca"]["evaluate"]["example_frame"],
        label=rpca_label(),
    script:
        "../scripts/rpca_figures.py"


rule rpca_compare:
    input:
        code=script_code("rpca_compare.py"),
        metrics=expand(
            "results/rpca/{mode}/{prox}/metrics.tsv",
            mode=config["rpca"]["modes"],
            prox=config["rpca"]["variants"] + ["pcp"],
        ),
    output:
        table="results/rpca/comparison.tsv",
        figure=report(
            "results/figures/rpca/comparison.png",
            caption="../report/rpca_comparison.rst",
            category="Tasks 4 and 5: learned RPCA",
            subcategory="comparison",
        ),
        figure_pdf="results/figures/rpca/comparison.pdf",
    log:
        "logs/rpca/compare.log",
    benchmark:
        "results/benchmarks/rpca_compare.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        label=rpca_label(),
    script:
        "../scripts/rpca_compare.py"


# Wall-clock time per sample: a measurement of this machine, kept apart from the results
# (under results/benchmarks/) because it differs between any two runs.
rule rpca_timing:
    input:
        code=script_code("rpca_timing.py"),
        timings=expand(
            "results/benchmarks/rpca/{mode}_{prox}_time_per_sample.tsv",
            mode=config["rpca"]["modes"],
            prox=config["rpca"]["variants"] + ["pcp"],
        ),
    output:
        table="results/benchmarks/rpca/time_per_sample.tsv",
        figure=report(
            "results/benchmarks/rpca/time_per_sample.png",
            caption="../report/rpca_timing.rst",
            category="Tasks 4 and 5: learned RPCA",
            subcategory="comparison",
        ),
        figure_pdf="results/benchmarks/rpca/time_per_sample.pdf",
    log:
        "logs/rpca/timing.log",
    benchmark:
        "results/benchmarks/rpca_timing.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        label=rpca_label(),
    script:
        "../scripts/rpca_timing.py"
