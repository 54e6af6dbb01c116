# Task 3's input and parameter functions and figure list (included by ../lista.smk).
# Functions live apart from the rules, as `snakemake --lint` asks; constants and
# input functions of this stage only (shared ones: common.smk).


def lista_figures():
    c = config["lista"]
    settings = list(c["settings"])
    return (
        expand(
            "results/figures/lista/{name}.{ext}",
            name=["ista_losses", "ista_recovery", "ista_convergence"],
            ext=FIGURE_EXTS,
        )
        + expand(
            "results/figures/lista/{setting}/{name}.{ext}",
            setting=settings,
            name=["training", "layers", "nmse_iterations"],
            ext=FIGURE_EXTS,
        )
        + expand("results/lista/{setting}/summary.tsv", setting=settings)
        + ["results/lista/ista_study.tsv", "results/lista/parameters.tsv"]
    )


def lista_models():
    """The learned models of task 3 that are enabled."""
    return [name for name, opts in config["lista"]["models"].items() if opts["enabled"]]


def lista_setting(wildcards):
    return config["lista"]["settings"][wildcards.setting]


def lista_setting_seed(wildcards):
    """Data and training seed of a task 3 setting: the global seed plus the setting's own."""
    return config["seed"] + config["lista"]["settings"][wildcards.setting]["seed"]


def lista_setting_key(key):
    def get(wildcards):
        return config["lista"]["settings"][wildcards.setting][key]

    return get


def lista_support_selection(wildcards):
    return config["lista"]["models"][wildcards.model]["support_selection"]


def lista_model_outputs(kind):
    """The per-model tables of kind ``history`` or ``layers`` of a task 3 setting."""

    def get(wildcards):
        return expand(
            "results/lista/{setting}/{model}_{kind}.tsv",
            setting=wildcards.setting,
            model=lista_models(),
            kind=kind,
        )

    return get


FIGURE_SETS.append(("lista", lista_figures))
