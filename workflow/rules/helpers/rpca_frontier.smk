# Helpers of the rpca_frontier stage: constants, input functions and its figure list
# (kept apart from its rules, as snakemake --lint asks).

RPCA_FRONTIER = config["rpca"]["frontier"]


# rpca.frontier.depths must include rpca.model.n_layers: check_cross_keys in
# deepunfold.pipeline.config (validate_config, common.smk).


def rpca_depth_model(wildcards, kind):
    """Checkpoint paths of ``kind`` (model or untrained) for every frontier depth."""
    main = config["rpca"]["model"]["n_layers"]
    base = f"results/rpca/{wildcards.mode}/{wildcards.prox}"
    return [
        f"{base}/{kind}.pt" if k == main else f"{base}/K{k}/{kind}.pt"
        for k in RPCA_FRONTIER["depths"]
    ]


def rpca_frontier_learned(wildcards):
    return rpca_depth_model(wildcards, "model")


def rpca_frontier_untrained(wildcards):
    return rpca_depth_model(wildcards, "untrained")


def rpca_depth_model_params(wildcards):
    """The main model's architecture with the depth of the wildcard."""
    return {**config["rpca"]["model"], "n_layers": int(wildcards.layers)}


def rpca_frontier_outputs():
    if not RPCA_FRONTIER["enabled"]:
        return []
    return expand(
        "results/benchmarks/rpca/frontier/{mode}_{prox}.{ext}",
        mode=config["rpca"]["modes"],
        prox=config["rpca"]["variants"],
        ext=["tsv", "png", "pdf"],
    )


FIGURE_SETS.append(("rpca", rpca_frontier_outputs))
