# Helpers of the csc stage: constants, input functions and its figure list
# (kept apart from its rules, as snakemake --lint asks).

CSC = config["csc"]
CSC_CATEGORY = "Task 7: convolutional sparse coding in CNNs"


def csc_data():
    """The data set's loader options: its name plus its own section of csc.data."""
    dataset = CSC["data"]["dataset"]
    return {"dataset": dataset, **CSC["data"][dataset]}


def csc_data_files(wildcards=None):
    """CIFAR-10's files (training and test batches) in the full study; none for the digits."""
    if CSC["data"]["dataset"] == "cifar10":
        return torchvision_files("CIFAR10") + [
            f"resources/cifar10/{f}" for f in TORCHVISION["CIFAR10"]["train_files"]
        ]
    return []


def csc_train_params():
    """Training settings less the thread count (which changes speed, not results)."""
    return {k: v for k, v in CSC["train"].items() if k != "threads"}


def csc_res_params():
    return {k: v for k, v in CSC["res_csc"].items() if k != "unfoldings"}


def csc_res_trained(name):
    return expand(
        "results/csc/res_csc/{variant}/k{k}/{name}.tsv",
        variant=["mlista", "rescsc"],
        k=CSC["res_csc"]["unfoldings"],
        name=name,
    )


def csc_figures():
    return expand(
        "results/figures/csc/{name}.{ext}",
        name=["training", "robustness", "res_csc"],
        ext=FIGURE_EXTS,
    ) + [
        "results/csc/parameters.tsv",
        "results/csc/robustness.tsv",
        "results/csc/lambda_sweep.tsv",
        "results/csc/res_csc/accuracy.tsv",
    ]


# results/figures/all collects this stage's figures too (common.smk's list of stages)
FIGURE_SETS.append(("csc", csc_figures))
