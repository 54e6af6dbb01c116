# deepunfold: every figure of the deep-unfolding study as a Snakemake target.
#
#   snakemake --cores 8 results/figures/all               # full study (config/config.yaml)
#   snakemake --workflow-profile workflow/profiles/demo   # offline demo (config/demo.yaml)
#
# Config keys: config/README.md. Stages: workflow/rules/. Library: src/deepunfold/
# (docs/architecture.md). Per-task notes: docs/.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/robust.smk"
include: "workflow/rules/lista.smk"
include: "workflow/rules/rpca.smk"
include: "workflow/rules/rpca_frontier.smk"
include: "workflow/rules/multilayer.smk"
include: "workflow/rules/csc.smk"
include: "workflow/rules/clip.smk"
include: "workflow/rules/manifest.smk"


rule all:
    default_target: True
    input:
        "results/figures/all",
