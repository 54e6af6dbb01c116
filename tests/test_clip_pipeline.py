"""Task 2 end to end: the demo stage, the real-weights code path, and offline downloads."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import DEMO, copy_workflow, job_counts, snakemake

from deepunfold.clip.cache import read_embeddings

pytestmark = pytest.mark.pipeline

CLIP_TARGETS = [
    "results/clip/table1_sparsity_accuracy.tsv",
    "results/clip/table2_memory.tsv",
    "results/clip/table3_top_concepts.tsv",
    "results/figures/clip/accuracy_vs_nnz.png",
    "results/figures/clip/image_0.png",
    "results/figures/clip/tinyclip_training.png",
]


@pytest.fixture(scope="module")
def clip_demo(tmp_path_factory):
    """The demo's task-2 targets built once from an empty results/."""
    wd = copy_workflow(tmp_path_factory.mktemp("clipdemo"))
    snakemake(wd, *CLIP_TARGETS, *DEMO)
    return wd


def test_demo_dense_accuracy_and_sparse_at_smallest_lambda(clip_demo):
    dense = pd.read_csv(clip_demo / "results/clip/dense_zero_shot.tsv", sep="\t").iloc[0]
    assert dense["chance"] == pytest.approx(0.1)
    assert dense["accuracy"] > 0.6  # far above the 10 % of chance
    t1 = pd.read_csv(clip_demo / "results/clip/table1_sparsity_accuracy.tsv", sep="\t")
    smallest = t1.sort_values("lambda").iloc[0]
    assert abs(smallest["accuracy"] - dense["accuracy"]) <= 0.05
    # every code is solved: KKT violation far below lambda, duality gap tiny
    assert (t1["kkt_max"] <= 1e-6 * t1["lambda"]).all(), t1
    assert (t1["gap_max"] <= 1e-8).all(), t1
    nnz = t1.sort_values("lambda")["mean_nnz"].to_numpy()
    assert (np.diff(nnz) <= 0).all() and nnz[0] > nnz[-1]
    assert t1.sort_values("lambda").iloc[-1]["mean_nnz"] == 0  # lambda 5 > lambda_max


def test_demo_tables_count_what_they_say(clip_demo):
    from deepunfold.clip.codes import read_codes

    t2 = pd.read_csv(clip_demo / "results/clip/table2_memory.tsv", sep="\t")
    images = read_embeddings(clip_demo / "results/clip/embeddings/images.parquet", kind="image")
    n, d = images.embeddings.shape
    assert t2.iloc[0]["in_memory_bytes"] == n * d * 4
    row = t2[t2["lambda"] == 0.05].iloc[0]
    csr, *_ = read_codes(clip_demo / "results/clip/codes/lambda_0.05.parquet")
    assert row["in_memory_bytes"] == 8 * csr.nnz + 4 * (n + 1)
    t3 = pd.read_csv(clip_demo / "results/clip/table3_top_concepts.tsv", sep="\t")
    assert t3["nonzero_count"].tolist() == sorted(t3["nonzero_count"], reverse=True)
    assert t3.iloc[0]["nonzero_count"] == (csr != 0).sum(0).max()


def test_demo_figures_say_demo_backbone(clip_demo):
    for name in ["accuracy_vs_nnz", "image_0", "tinyclip_training"]:
        for ext in ["png", "pdf"]:
            assert (clip_demo / f"results/figures/clip/{name}.{ext}").stat().st_size > 1000
    for log in ["summary", "panel_0"]:
        assert (
            "figure note: offline demo - demo backbone"
            in (clip_demo / f"logs/clip/{log}.log").read_text()
        )
    images = read_embeddings(clip_demo / "results/clip/embeddings/images.parquet")
    assert "digits" in images.meta["dataset"] and "demo backbone" in images.meta["weights"]


def test_adding_a_lambda_runs_only_that_job(clip_demo):
    cfg = yaml.safe_load((clip_demo / "config/demo.yaml").read_text())
    cfg["clip"]["lambdas"] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 5, 0.03]
    (clip_demo / "config/more.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(
        clip_demo, "--dry-run", CLIP_TARGETS[0], "--cores", "1", "--configfile=config/more.yaml"
    )
    counts = job_counts(proc.stdout)
    assert counts.get("clip_sparse_code") == 1 and counts.get("clip_summary") == 1, counts
    assert "clip_embed_images" not in counts and "clip_align" not in counts


def _register_tiny_openclip(wd):
    """A randomly initialised open_clip model registered from a config, saved as a checkpoint."""
    import torch

    from deepunfold.clip.embed import load_model
    from deepunfold.clip.tinyclip import tinyclip_config

    cfg = tinyclip_config(embed_dim=16, vision_width=8, text_width=32, text_layers=1)
    (wd / "tiny_arch.json").write_text(json.dumps(cfg))
    torch.manual_seed(0)
    model, _, _ = load_model("test-tiny-openclip", None, model_config=cfg)
    torch.save(model.state_dict(), wd / "tiny_random.pt")


def _fake_flickr_and_tagger(wd):
    """A Karpathy-format caption file and an NLTK tagger trained here, in resources/."""
    from nltk.tag.perceptron import PerceptronTagger

    words = ["dog", "man", "horse", "ball", "street", "girl", "boat", "tree"]
    sents = [f"a {a} and a {b} near the {c}" for a in words for b in words for c in words[:3]]
    data = {
        "images": [
            {"sentences": [{"raw": s} for s in sents[i : i + 5]]} for i in range(0, len(sents), 5)
        ]
    }
    (wd / "resources/flickr30k").mkdir(parents=True)
    (wd / "resources/flickr30k/dataset_flickr30k.json").write_text(json.dumps(data))
    tagged = [
        [
            ("a", "DT"),
            (a, "NN"),
            ("and", "CC"),
            ("a", "DT"),
            (b, "NN"),
            ("near", "IN"),
            ("the", "DT"),
            ("dog", "NN"),
        ]
        for a in words
        for b in words
    ]
    tagger = PerceptronTagger(load=False)
    tagger.train(tagged, nr_iter=3)
    folder = wd / "resources/nltk_data/taggers/averaged_perceptron_tagger_eng"
    folder.mkdir(parents=True)
    for name, obj in zip(tagger.param_files("eng"), tagger.encode_json_obj(), strict=True):
        (folder / name).write_text(json.dumps(obj))
    stop = wd / "resources/nltk_data/corpora/stopwords"
    stop.mkdir(parents=True)
    (stop / "english").write_text("a\nand\nthe\nnear\n")


def test_real_weights_path_end_to_end(tmp_path):
    """backbone=openclip with a local checkpoint and a registered architecture, captions
    vocabulary through the NLTK tagger loader: only the weights and data differ from the
    real run."""
    wd = copy_workflow(tmp_path / "wf")
    _register_tiny_openclip(wd)
    _fake_flickr_and_tagger(wd)
    cfg = {
        "run_label": "real path test",
        "clip": {
            "dataset": "digits",
            "backbone": "openclip",
            "model": "test-tiny-openclip",
            "pretrained": "tiny_random.pt",
            "model_config": "tiny_arch.json",
            "concepts": {"source": "flickr30k", "top_k": 5},
            "lambdas": [0.05, 0.5],
            "report_lambda": 0.05,
            "panels": {"images": [1]},
            "threads": 1,
        },
    }
    (wd / "config/realpath.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(
        wd,
        "results/clip/table3_top_concepts.tsv",
        "results/figures/clip/image_1.png",
        "--cores",
        "2",
        "--configfile=config/realpath.yaml",
    )
    vocab = pd.read_csv(wd / "results/clip/vocabulary.tsv", sep="\t")
    # dog, man and horse also close every caption: 112 each, ties broken alphabetically
    assert vocab["concept"].tolist()[:5] == ["dog", "horse", "man", "ball", "boat"]
    assert vocab["count"].tolist()[:4] == [112, 112, 112, 48]
    assert len(vocab) == 5 + 10  # top 5 nouns + the 10 digit names
    concepts = read_embeddings(wd / "results/clip/embeddings/concepts.parquet", kind="text")
    assert concepts.meta["model"] == "test-tiny-openclip" and concepts.embeddings.shape[1] == 16
    assert "tiny_random.pt" in concepts.meta["weights"]
    assert concepts.texts[0] == "a photo of a dog"
    t1 = pd.read_csv(wd / "results/clip/table1_sparsity_accuracy.tsv", sep="\t")
    assert (t1["kkt_max"] <= 1e-6 * t1["lambda"]).all()


def test_offline_downloads_name_the_files(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    for target, log, named in [
        (
            "resources/flickr30k/dataset_flickr30k.json",
            "logs/resources/flickr30k_captions.log",
            "resources/flickr30k/dataset_flickr30k.json",
        ),
        (
            "resources/nltk_data/corpora/stopwords/english",
            "logs/resources/nltk_data.log",
            "resources/nltk_data/corpora/stopwords/english",
        ),
    ]:
        proc = snakemake(wd, "--cores", "1", target, check=False, timeout=600)
        if proc.returncode == 0:
            pytest.skip("this machine has network access")
        text = (wd / log).read_text()
        assert named in text and "Place these files" in text
        assert not (wd / target).exists()


def test_offline_weights_rule_names_the_checkpoint(tmp_path):
    from deepunfold.clip.embed import fetch_weights
    from deepunfold.io import MissingResourceError

    out = tmp_path / "resources/open_clip/RN50_nowhere.pt"
    with pytest.raises(MissingResourceError) as err:
        fetch_weights("RN50", "no-such-tag", out, tmp_path / "cache")
    assert str(out) in str(err.value) and "clip.pretrained" in str(err.value)
    assert not out.exists()
