# Tasks 4 and 5, the frontier: quality against time per sample of PCP and AccAltProj (ladders
# of iteration counts), the untrained ISTA-RPCA and the learned model at several depths K,
# and the learned RPCA that scales (LRPCA, lrpca.smk) at several depths of one model.
#
#   results/rpca/{mode}/{prox}/K{layers}/model.pt     one training job per extra depth
#   results/benchmarks/rpca/frontier/{mode}_{prox}.*  points, budget table, summary, figure
#
# The depth of the main model (rpca.model.n_layers) is not trained twice: its K is read from
# results/rpca/{mode}/{prox}/model.pt.


include: "helpers/rpca_frontier.smk"
include: "lrpca.smk"


rule rpca_train_depth:
    input:
        code=script_code("rpca_train.py"),
        train="results/rpca/data/train.npz",
        val="results/rpca/data/val.npz",
    output:
        model="results/rpca/{mode}/{prox}/K{layers}/model.pt",
        untrained="results/rpca/{mode}/{prox}/K{layers}/untrained.pt",
        history="results/rpca/{mode}/{prox}/K{layers}/history.tsv",
        tuning="results/rpca/{mode}/{prox}/K{layers}/tuning.tsv",
    log:
        "logs/rpca/{mode}/{prox}/K{layers}/train.log",
    benchmark:
        "results/benchmarks/rpca_train_{mode}_{prox}_K{layers}.tsv"
    wildcard_constraints:
        **RPCA_VARIANT,
        layers=r"[1-9]\d*",
    conda:
        "../envs/deepunfold.yaml"
    threads: config["rpca"]["train"]["threads"]
    resources:
        mem_mb=8000,
        runtime=1200,
    params:
        model=rpca_depth_model_params,
        train=config["rpca"]["train"],
        tune=config["rpca"]["tune"],
        batch_size=rpca_batch_size(),
        seed=config["rpca"]["train"]["seed"],
        device=config["rpca"]["device"],
    script:
        "../scripts/rpca_train.py"


# Everything here is a measurement of this machine (times), so it lives under
# results/benchmarks/; one thread, all methods timed alternately in one process.
rule rpca_frontier:
    input:
        code=script_code("rpca_frontier.py"),
        test="results/rpca/data/test.npz",
        learned=rpca_frontier_learned,
        untrained=rpca_frontier_untrained,
        lrpca=lrpca_frontier_model,
    output:
        points="results/benchmarks/rpca/frontier/{mode}_{prox}.tsv",
        budgets="results/benchmarks/rpca/frontier/{mode}_{prox}_budgets.tsv",
        summary="results/benchmarks/rpca/frontier/{mode}_{prox}_summary.txt",
        figure=report(
            "results/benchmarks/rpca/frontier/{mode}_{prox}.png",
            caption="../report/rpca_frontier.rst",
            category="Tasks 4 and 5: learned RPCA",
            subcategory="frontier",
        ),
        figure_pdf="results/benchmarks/rpca/frontier/{mode}_{prox}.pdf",
    log:
        "logs/rpca/{mode}/{prox}/frontier.log",
    benchmark:
        "results/benchmarks/rpca_frontier_{mode}_{prox}.tsv"
    wildcard_constraints:
        **RPCA_VARIANT,
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=600,
    params:
        frontier=RPCA_FRONTIER,
        pcp=config["rpca"]["pcp"],
        rank=config["rpca"]["data"]["rank"],
        reference_depth=config["rpca"]["model"]["n_layers"],
        lrpca_depths=RPCA_LRPCA["depths"],
        batch_size=rpca_batch_size(),
        digits_name=RPCA_DIGITS_NAME[config["rpca"]["data"]["digits"]],
        label=rpca_label(),
    script:
        "../scripts/rpca_frontier.py"
