# Task 6's input and parameter functions and figure list (included by
# ../multilayer.smk).
# Functions live apart from the rules, as `snakemake --lint` asks; constants and
# input functions of this stage only (shared ones: common.smk).


def multilayer_figures():
    return expand(
        "results/figures/multilayer/{name}.{ext}",
        name=[
            "coherence_recovery",
            "pursuit_errors",
            "forward_support",
            "unfolding_accuracy",
        ],
        ext=FIGURE_EXTS,
    ) + [
        "results/multilayer/coherence/recovery.tsv",
        "results/multilayer/pursuits/errors.tsv",
        "results/multilayer/pursuits/forward_support.tsv",
        "results/multilayer/mlista_net/accuracy.tsv",
    ]


def multilayer_network_params():
    """The settings every ML-ISTA net training job shares: all but the list of unfoldings,
    so that adding a k to that list runs only the new job."""
    return {
        key: value
        for key, value in config["multilayer"]["network"].items()
        if key != "unfoldings"
    }


def multilayer_data(wildcards):
    """MNIST's files when the ML-ISTA net trains on MNIST (scikit-learn's digits ship)."""
    if config["multilayer"]["network"]["dataset"] == "mnist":
        return torchvision_files("MNIST")
    return []


def multilayer_trained(name):
    """The per-k outputs of the ML-ISTA net training jobs."""
    return expand(
        "results/multilayer/mlista_net/k{k}/{name}.tsv",
        k=config["multilayer"]["network"]["unfoldings"],
        name=name,
    )


FIGURE_SETS.append(("multilayer", multilayer_figures))
