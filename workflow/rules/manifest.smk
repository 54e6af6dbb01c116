rule figures_manifest:
    input:
        code=script_code("figures_manifest.py"),
        figures=all_figures,
    output:
        "results/figures/all",
    log:
        "logs/figures_manifest.log",
    localrule: True
    conda:
        "../envs/deepunfold.yaml"
    params:
        config=config_json(),
    script:
        "../scripts/figures_manifest.py"
