# Tasks 4/5's input and parameter functions and figure list (included by ../rpca.smk).
# Functions live apart from the rules, as `snakemake --lint` asks; constants and
# input functions of this stage only (shared ones: common.smk).


def rpca_digit_files(wildcards):
    """MNIST's files in the full study; nothing for scikit-learn's shipped digits (demo)."""
    if config["rpca"]["data"]["digits"] == "mnist":
        return torchvision_files("MNIST")
    return []


def rpca_batch_size():
    """Samples per batch: frames in frame mode, whole sequences in video mode."""
    frames = config["rpca"]["train"]["batch_frames"]
    return {
        "frame": frames,
        "video": max(1, frames // config["rpca"]["data"]["n_frames"]),
    }


def rpca_figures():
    c = config["rpca"]
    return (
        expand(
            "results/figures/rpca/{mode}_{prox}/{name}.{ext}",
            mode=c["modes"],
            prox=c["variants"],
            name=["loss", "thresholds", "singular_values", "sparsity", "examples"],
            ext=FIGURE_EXTS,
        )
        + expand("results/figures/rpca/comparison.{ext}", ext=FIGURE_EXTS)
        + ["results/rpca/comparison.tsv"]
        # wall-clock measurements (listed without hash in the manifest)
        + expand(
            "results/benchmarks/rpca/time_per_sample.{ext}", ext=FIGURE_EXTS + ["tsv"]
        )
    )


FIGURE_SETS.append(("rpca", rpca_figures))
