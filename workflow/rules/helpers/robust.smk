# Task 1's figure list (included by ../robust.smk).
# Functions live apart from the rules, as `snakemake --lint` asks; constants and
# input functions of this stage only (shared ones: common.smk).


def robust_figures():
    return expand(
        "results/figures/robust/{name}.{ext}",
        name=["estimates", "loss_curves", "breakdown"],
        ext=FIGURE_EXTS,
    ) + ["results/robust/estimates.tsv"]


FIGURE_SETS.append(("robust", robust_figures))
