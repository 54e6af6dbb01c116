# Learned RPCA that scales (LRPCA, Cai, Liu & Yin 2021), beside the unfolded conv network:
#
#   results/rpca/lrpca/{frame,video,synthetic}/model.pt  one training job per setting
#   results/benchmarks/rpca/frontier/synthetic.*         frontier of the synthetic problems
#
# The frame and video models join the rpca_frontier jobs of their arrangement.


include: "helpers/lrpca.smk"


rule rpca_lrpca_train:
    input:
        unpack(lrpca_train_inputs),
        code=script_code("lrpca_train.py"),
    output:
        model="results/rpca/lrpca/{setting}/model.pt",
        history="results/rpca/lrpca/{setting}/history.tsv",
    log:
        "logs/rpca/lrpca/{setting}/train.log",
    benchmark:
        "results/benchmarks/rpca_lrpca_train_{setting}.tsv"
    wildcard_constraints:
        setting=LRPCA_SETTING,
    conda:
        "../envs/deepunfold.yaml"
    threads: RPCA_LRPCA["train"]["threads"]
    resources:
        mem_mb=8000,
        runtime=600,
    params:
        lrpca=lrpca_train_params,
        rank=config["rpca"]["data"]["rank"],
        device=config["rpca"]["device"],
    script:
        "../scripts/lrpca_train.py"


# Times are measurements of this machine: one thread, all methods timed alternately.
rule rpca_lrpca_synthetic_frontier:
    input:
        code=script_code("lrpca_frontier.py"),
        model="results/rpca/lrpca/synthetic/model.pt",
    output:
        points="results/benchmarks/rpca/frontier/synthetic.tsv",
        budgets="results/benchmarks/rpca/frontier/synthetic_budgets.tsv",
        summary="results/benchmarks/rpca/frontier/synthetic_summary.txt",
        figure=report(
            "results/benchmarks/rpca/frontier/synthetic.png",
            caption="../report/rpca_lrpca_frontier.rst",
            category="Tasks 4 and 5: learned RPCA",
            subcategory="frontier",
        ),
        figure_pdf="results/benchmarks/rpca/frontier/synthetic.pdf",
    log:
        "logs/rpca/lrpca/synthetic/frontier.log",
    benchmark:
        "results/benchmarks/rpca_lrpca_synthetic_frontier.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=600,
    params:
        lrpca=RPCA_LRPCA,
        frontier=RPCA_FRONTIER,
        pcp=config["rpca"]["pcp"],
        label=config["run_label"],
    script:
        "../scripts/lrpca_frontier.py"
