# Task 2's configuration, input and parameter functions and figure list (included by
# ../clip.smk).
# Functions live apart from the rules, as `snakemake --lint` asks; constants and
# input functions of this stage only (shared ones: common.smk).


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
    device=CLIP["embed_device"],
    mixed_precision=CLIP["embed_mixed_precision"],
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


FIGURE_SETS.append(("clip", clip_figures))
