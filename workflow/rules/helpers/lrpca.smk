# Helpers of the LRPCA stage (../lrpca.smk): constants, input functions, outputs.

RPCA_LRPCA = config["rpca"]["lrpca"]
LRPCA_SETTING = "frame|video|synthetic"


def lrpca_enabled():
    return RPCA_FRONTIER["enabled"] and RPCA_LRPCA["enabled"]


def lrpca_train_inputs(wildcards):
    """The moving-digit splits for the arrangements; nothing for the synthetic problems,
    which the training job draws itself."""
    if wildcards.setting == "synthetic":
        return {}
    return {"train": "results/rpca/data/train.npz", "val": "results/rpca/data/val.npz"}


def lrpca_train_params(wildcards):
    """The keys a training job reads: the frontier's depths retrain nothing, and the
    synthetic problems' keys only the synthetic model."""
    skip = {"depths", "enabled"} | (
        {"synthetic"} if wildcards.setting != "synthetic" else set()
    )
    return {k: v for k, v in RPCA_LRPCA.items() if k not in skip}


def lrpca_frontier_model(wildcards):
    """The arrangement's LRPCA model in its frontier (none when LRPCA is off)."""
    if not lrpca_enabled():
        return []
    return f"results/rpca/lrpca/{wildcards.mode}/model.pt"


def lrpca_outputs():
    if not lrpca_enabled():
        return []
    return expand(
        "results/benchmarks/rpca/frontier/synthetic.{ext}", ext=["tsv", "png", "pdf"]
    )


FIGURE_SETS.append(("rpca", lrpca_outputs))
