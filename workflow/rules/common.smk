# Shared set-up: config validation, wildcard constraints, input functions and the one list
# of figures that `results/figures/all` collects.

import json
from pathlib import Path

from deepunfold.pipeline.config import validate_config
from deepunfold.pipeline.provenance import script_sources
from deepunfold.pipeline.resources import TORCHVISION

# Stops the run before any job, naming every bad key (and fills in schema defaults).
validate_config(config, workflow.source_path("../schemas/config.schema.yaml"))


wildcard_constraints:
    ext="png|pdf",


FIGURE_EXTS = ["png", "pdf"]


def torchvision_files(name):
    """The files torchvision keeps for data set ``name`` under resources/<name lower>/."""
    return [f"resources/{name.lower()}/{f}" for f in TORCHVISION[name]["files"]]


def script_code(script):
    """A rule's code inputs: its script and every library file the script imports,
    transitively (lazy imports included), so that editing any of them reruns the rule.
    Derived by static analysis (deepunfold.pipeline.provenance), never listed by hand.
    """
    return [f"workflow/scripts/{script}"] + script_sources(
        Path(workflow.basedir) / "workflow" / "scripts" / script,
        root=Path(workflow.basedir) / "src" / "deepunfold",
        relative_to=workflow.basedir,
    )


def robust_figures():
    return expand(
        "results/figures/robust/{name}.{ext}",
        name=["estimates", "loss_curves", "breakdown"],
        ext=FIGURE_EXTS,
    ) + ["results/robust/estimates.tsv"]


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


# Task 2 (workflow/rules/clip.smk): configuration, input and parameter functions.

from pathlib import Path

CLIP = config["clip"]
CLIP_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
TINYCLIP = "deepunfold-tinyclip"


def clip_lambda(lam):
    """A lambda as it appears in file names (shortest round-trip form: 0.05, 1, 5)."""
    return f"{float(lam):g}"


def clip_pretrained_is_file():
    pretrained = str(CLIP["pretrained"])
    return "/" in pretrained or pretrained.endswith(CLIP_CHECKPOINT_SUFFIXES)


def clip_model_name():
    return TINYCLIP if CLIP["backbone"] == "tinyclip" else CLIP["model"]


def clip_weights(wildcards=None):
    """The checkpoint (and architecture config, if any) the embedding jobs load."""
    if CLIP["backbone"] == "tinyclip":
        return {
            "weights": "results/clip/tinyclip/weights.pt",
            "model_config": "results/clip/tinyclip/model_config.json",
        }
    files = {}
    if clip_pretrained_is_file():
        files["weights"] = CLIP["pretrained"]
    else:
        files["weights"] = (
            f"resources/open_clip/{CLIP['model']}_{CLIP['pretrained']}.pt"
        )
    if CLIP["model_config"]:
        files["model_config"] = CLIP["model_config"]
    return files


def clip_weights_label():
    if CLIP["backbone"] == "tinyclip":
        return "demo backbone: tiny CLIP trained on digits in this pipeline"
    return str(CLIP["pretrained"])


def clip_image_files(wildcards=None):
    return torchvision_files("CIFAR10") if CLIP["dataset"] == "cifar10" else []


def clip_vocabulary_inputs(wildcards=None):
    if CLIP["concepts"]["source"] == "flickr30k":
        return {
            "captions": "resources/flickr30k/dataset_flickr30k.json",
            "tagger": NLTK_TAGGER_FILES,
            "stopwords": "resources/nltk_data/corpora/stopwords/english",
        }
    return {"word_list": CLIP["concepts"]["word_list"]}


def clip_code_files(kind):
    ext = {"codes": "parquet", "summary": "tsv"}[kind]
    return [
        f"results/clip/codes/lambda_{clip_lambda(lam)}.{ext}" for lam in CLIP["lambdas"]
    ]


def clip_cifar_root(wildcards, input):
    """The torchvision root of CIFAR-10 (derived from the input files, as --lint asks)."""
    files = [f for f in input.get("data", []) if "cifar-10-batches-py" in f]
    return str(Path(files[0]).parents[1]) if files else "resources/cifar10"


def clip_nltk_root(wildcards, input=None, output=None):
    """The nltk_data folder of the stopword file (an input or an output of the rule)."""
    files = input if output is None else output
    stop = files.get("stopwords") if files is not None else None
    return str(Path(stop).parents[2]) if stop else ""


def clip_note():
    if CLIP["backbone"] == "tinyclip":
        return f"{config['run_label']} - demo backbone (tiny CLIP trained on digits)"
    return config["run_label"]


NLTK_TAGGER_FILES = [
    f"resources/nltk_data/taggers/averaged_perceptron_tagger_eng/averaged_perceptron_tagger_eng.{part}.json"
    for part in ("weights", "tagdict", "classes")
]
CLIP_EMBED_PARAMS = dict(
    model=clip_model_name(),
    weights_label=clip_weights_label(),
    dataset=CLIP["dataset"],
    cifar_root=clip_cifar_root,
    test_fraction=CLIP["digits"]["test_fraction"],
    seed=config["seed"],
    batch_size=CLIP["batch_size"],
)


def clip_figures():
    c = config["clip"]
    figures = ["accuracy", "accuracy_vs_nnz"]
    figures += [f"image_{i}" for i in c["panels"]["images"]]
    if c["backbone"] == "tinyclip":
        figures.append("tinyclip_training")
    return expand(
        "results/figures/clip/{name}.{ext}", name=figures, ext=FIGURE_EXTS
    ) + [
        f"results/clip/{t}.tsv"
        for t in ("table1_sparsity_accuracy", "table2_memory", "table3_top_concepts")
    ]


# The one list of (config section, figure-list function) pairs. A stage adds its figures
# here; `results/figures/all` lists those of every enabled section.
FIGURE_SETS = [
    ("robust", robust_figures),
    ("lista", lista_figures),
    ("rpca", rpca_figures),
    ("multilayer", multilayer_figures),
    ("clip", clip_figures),
]


def all_figures(wildcards=None):
    return [
        path
        for section, figures in FIGURE_SETS
        if config[section]["enabled"]
        for path in figures()
    ]


def config_json():
    """The resolved config as canonical JSON (stable across runs: no spurious reruns)."""
    return json.dumps(config, sort_keys=True)


def section_json(section):
    return json.dumps(config[section], sort_keys=True)
