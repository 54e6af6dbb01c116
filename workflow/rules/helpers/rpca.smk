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


# Every figure of tasks 4/5 names its digit source in its corner note ("MNIST 5k subset",
# never just "MNIST", for the packaged subset).
RPCA_DIGITS_NAME = {
    "mnist": "MNIST",
    "mnist5k": "MNIST 5k subset",
    "sklearn": "scikit-learn 8x8 digits upsampled",
}


def rpca_label():
    """The corner note of the stage's figures: the run label and the digit source."""
    digits = RPCA_DIGITS_NAME[config["rpca"]["data"]["digits"]]
    label = config["run_label"]
    return f"{label}; digits: {digits}" if label else f"digits: {digits}"
