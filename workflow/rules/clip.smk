# Task 2: sparse concept decompositions of CLIP embeddings.
#
# images / class prompts / concepts -> Parquet embedding caches (once) -> alignment + dense
# zero-shot -> one sparse-coding job per lambda -> tables, figures, per-image panels.
# Real study: CIFAR-10 + open_clip ViT-B-32-quickgelu/openai + Flickr30k nouns. Offline demo:
# held-out digits + a tiny CLIP trained here (clip_train_tinyclip) + a small word list.


include: "helpers/clip.smk"


wildcard_constraints:
    lam="[0-9]+(\\.[0-9]+)?(e-?[0-9]+)?",
    texts="classes|concepts",
    index="[0-9]+",


localrules:
    download_clip_weights,
    download_flickr30k_captions,
    download_nltk_data,


rule download_clip_weights:
    output:
        weights="resources/open_clip/{model}_{pretrained}.pt",
    log:
        "logs/resources/open_clip_{model}_{pretrained}.log",
    conda:
        "../envs/deepunfold.yaml"
    params:
        model="{model}",
        pretrained="{pretrained}",
        cache_dir="resources/open_clip/cache",
    script:
        "../scripts/clip_fetch_weights.py"


rule download_flickr30k_captions:
    output:
        captions="resources/flickr30k/dataset_flickr30k.json",
    log:
        "logs/resources/flickr30k_captions.log",
    conda:
        "../envs/deepunfold.yaml"
    script:
        "../scripts/clip_fetch_captions.py"


rule download_nltk_data:
    output:
        tagger=NLTK_TAGGER_FILES,
        stopwords="resources/nltk_data/corpora/stopwords/english",
    log:
        "logs/resources/nltk_data.log",
    conda:
        "../envs/deepunfold.yaml"
    params:
        root=lambda wildcards, output: clip_nltk_root(wildcards, output=output),
    script:
        "../scripts/clip_fetch_nltk.py"


rule clip_train_tinyclip:
    input:
        code=script_code("clip_train_tinyclip.py"),
    output:
        weights="results/clip/tinyclip/weights.pt",
        model_config="results/clip/tinyclip/model_config.json",
        losses="results/clip/tinyclip/losses.tsv",
        figure=report(
            "results/figures/clip/tinyclip_training.png",
            caption="../report/clip_tinyclip_training.rst",
            category="Task 2: sparse CLIP concepts",
        ),
        figure_pdf="results/figures/clip/tinyclip_training.pdf",
    log:
        "logs/clip/train_tinyclip.log",
    benchmark:
        "results/benchmarks/clip_train_tinyclip.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        tinyclip=CLIP["tinyclip"],
        test_fraction=CLIP["digits"]["test_fraction"],
        seed=config["seed"],
        label=config["run_label"],
    script:
        "../scripts/clip_train_tinyclip.py"


rule clip_vocabulary:
    input:
        unpack(clip_vocabulary_inputs),
        code=script_code("clip_vocabulary.py"),
    output:
        vocabulary="results/clip/vocabulary.tsv",
    log:
        "logs/clip/vocabulary.log",
    benchmark:
        "results/benchmarks/clip_vocabulary.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        source=CLIP["concepts"]["source"],
        top_k=CLIP["concepts"]["top_k"],
        include_classes=CLIP["concepts"]["include_classes"],
        dataset=CLIP["dataset"],
        nltk_root=lambda wildcards, input: clip_nltk_root(wildcards, input=input),
    script:
        "../scripts/clip_vocabulary.py"


rule clip_embed_images:
    input:
        unpack(clip_weights),
        data=clip_image_files,
        code=script_code("clip_embed_images.py"),
    output:
        cache="results/clip/embeddings/images.parquet",
    log:
        "logs/clip/embed_images.log",
    benchmark:
        "results/benchmarks/clip_embed_images.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: CLIP["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        **CLIP_EMBED_PARAMS,
    script:
        "../scripts/clip_embed_images.py"


rule clip_embed_texts:
    input:
        unpack(clip_weights),
        vocabulary="results/clip/vocabulary.tsv",
        code=script_code("clip_embed_texts.py"),
    output:
        cache="results/clip/embeddings/{texts}.parquet",
    log:
        "logs/clip/embed_{texts}.log",
    benchmark:
        "results/benchmarks/clip_embed_{texts}.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: CLIP["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        **CLIP_EMBED_PARAMS,
        class_prompt=CLIP["class_prompt"],
        concept_prompt=CLIP["concept_prompt"],
    script:
        "../scripts/clip_embed_texts.py"


rule clip_align:
    input:
        images="results/clip/embeddings/images.parquet",
        concepts="results/clip/embeddings/concepts.parquet",
        classes="results/clip/embeddings/classes.parquet",
        code=script_code("clip_align.py"),
    output:
        aligned="results/clip/aligned.npz",
        dense="results/clip/dense_zero_shot.tsv",
    log:
        "logs/clip/align.log",
    benchmark:
        "results/benchmarks/clip_align.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/clip_align.py"


rule clip_sparse_code:
    input:
        aligned="results/clip/aligned.npz",
        images="results/clip/embeddings/images.parquet",
        classes="results/clip/embeddings/classes.parquet",
        code=script_code("clip_sparse_code.py"),
    output:
        codes="results/clip/codes/lambda_{lam}.parquet",
        summary="results/clip/codes/lambda_{lam}.tsv",
    log:
        "logs/clip/codes_lambda_{lam}.log",
    benchmark:
        "results/benchmarks/clip_sparse_code_lambda_{lam}.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: CLIP["threads"]
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        solver=CLIP["solver"],
        nonneg=CLIP["nonneg"],
        step=CLIP["step"],
        max_iter=CLIP["max_iter"],
        tol=CLIP["tol"],
        chunk_size=CLIP["chunk_size"],
        device=CLIP["device"],
        reconstruct_mean=CLIP["reconstruct_mean"],
    script:
        "../scripts/clip_sparse_code.py"


rule clip_summary:
    input:
        dense="results/clip/dense_zero_shot.tsv",
        images="results/clip/embeddings/images.parquet",
        concepts="results/clip/embeddings/concepts.parquet",
        summaries=clip_code_files("summary"),
        codes=clip_code_files("codes"),
        code=script_code("clip_summary.py"),
    output:
        table1="results/clip/table1_sparsity_accuracy.tsv",
        table2="results/clip/table2_memory.tsv",
        table3="results/clip/table3_top_concepts.tsv",
        accuracy=report(
            "results/figures/clip/accuracy.png",
            caption="../report/clip_accuracy.rst",
            category="Task 2: sparse CLIP concepts",
        ),
        accuracy_pdf="results/figures/clip/accuracy.pdf",
        accuracy_nnz=report(
            "results/figures/clip/accuracy_vs_nnz.png",
            caption="../report/clip_accuracy_vs_nnz.rst",
            category="Task 2: sparse CLIP concepts",
        ),
        accuracy_nnz_pdf="results/figures/clip/accuracy_vs_nnz.pdf",
    log:
        "logs/clip/summary.log",
    benchmark:
        "results/benchmarks/clip_summary.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        report_lambda=CLIP["report_lambda"],
        top_concepts=CLIP["top_concepts"],
        note=clip_note(),
    script:
        "../scripts/clip_summary.py"


rule clip_panel:
    input:
        codes=f"results/clip/codes/lambda_{clip_lambda(CLIP['report_lambda'])}.parquet",
        aligned="results/clip/aligned.npz",
        concepts="results/clip/embeddings/concepts.parquet",
        classes="results/clip/embeddings/classes.parquet",
        data=clip_image_files,
        code=script_code("clip_panel.py"),
    output:
        figure=report(
            "results/figures/clip/image_{index}.png",
            caption="../report/clip_panel.rst",
            category="Task 2: sparse CLIP concepts",
        ),
        figure_pdf="results/figures/clip/image_{index}.pdf",
    log:
        "logs/clip/panel_{index}.log",
    benchmark:
        "results/benchmarks/clip_panel_{index}.tsv"
    conda:
        "../envs/deepunfold.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        **{
            k: CLIP_EMBED_PARAMS[k]
            for k in ("dataset", "cifar_root", "test_fraction", "seed")
        },
        top_k=CLIP["panels"]["top_k"],
        note=clip_note(),
    script:
        "../scripts/clip_panel.py"
