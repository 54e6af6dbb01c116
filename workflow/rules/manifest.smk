rule figures_manifest:
    input:
        all_figures,
    output:
        "results/figures/all",
    log:
        "logs/figures_manifest.log",
    localrule: True
    params:
        config=config_json(),
    conda:
        "../envs/deepunfold.yaml"
    script:
        "../scripts/figures_manifest.py"
