# Task 1: robustness of the L2 / L1 / L0 location estimators.


include: "helpers/robust.smk"


rule robust_estimates:
    input:
        code=script_code("robust_estimates.py"),
    output:
        table="results/robust/estimates.tsv",
        estimates=report(
            "results/figures/robust/estimates.png",
            caption="../report/robust_estimates.rst",
            category="Task 1: robust estimators",
        ),
        estimates_pdf="results/figures/robust/estimates.pdf",
        losses=report(
            "results/figures/robust/loss_curves.png",
            caption="../report/robust_loss_curves.rst",
            category="Task 1: robust estimators",
        ),
        losses_pdf="results/figures/robust/loss_curves.pdf",
    log:
        "logs/robust/estimates.log",
    benchmark:
        "results/benchmarks/robust_estimates.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        observations=config["robust"]["observations"],
        true_value=config["robust"]["true_value"],
        l0_tolerance=config["robust"]["l0_tolerance"],
        plot_range=config["robust"]["plot_range"],
        grid_points=config["robust"]["grid_points"],
        label=config["run_label"],
    script:
        "../scripts/robust_estimates.py"


rule robust_breakdown:
    input:
        code=script_code("robust_breakdown.py"),
    output:
        by_magnitude="results/robust/breakdown_magnitude.tsv",
        by_count="results/robust/breakdown_count.tsv",
        figure=report(
            "results/figures/robust/breakdown.png",
            caption="../report/robust_breakdown.rst",
            category="Task 1: robust estimators",
        ),
        figure_pdf="results/figures/robust/breakdown.pdf",
    log:
        "logs/robust/breakdown.log",
    benchmark:
        "results/benchmarks/robust_breakdown.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        true_value=config["robust"]["true_value"],
        breakdown=config["robust"]["breakdown"],
        seed=config["seed"],
        label=config["run_label"],
    script:
        "../scripts/robust_breakdown.py"
