# Shared set-up: config validation, wildcard constraints, the helpers that several rule files
# use, and the list of figures that `results/figures/all` collects. A stage's own helpers and
# constants live in workflow/rules/helpers/<stage>.smk, which the stage's .smk includes.

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


def clip_cifar_root(wildcards, input):
    """The torchvision root of CIFAR-10 (derived from the input files, as --lint asks);
    a param of clip.smk's and csc.smk's embedding rules."""
    files = [f for f in input.get("data", []) if "cifar-10-batches-py" in f]
    return str(Path(files[0]).parents[1]) if files else "resources/cifar10"


# The one list of (config section, figure-list function) pairs: each stage's .smk appends
# its own (FIGURE_SETS.append(...) after its figure-list function); `results/figures/all`
# lists those of every enabled section (all_figures is called after every include).
FIGURE_SETS = []


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
