"""Concept vocabulary: top-k caption nouns plus class names, or a plain word list."""

from functools import partial

import pandas as pd
from tqdm import tqdm

from deepunfold.clip.concepts import (
    build_vocabulary,
    count_nouns,
    load_karpathy_captions,
    load_nltk_tagger,
    read_stopwords,
    read_word_list,
)
from deepunfold.clip.embed import class_names
from deepunfold.pipeline.io import write_table
from deepunfold.pipeline.jobs import setup_job

log = setup_job(snakemake.log[0])
p = snakemake.params
classes = class_names(p.dataset) if p.include_classes else []
if p.source == "flickr30k":
    captions = load_karpathy_captions(snakemake.input.captions)
    tagger = load_nltk_tagger(p.nltk_root)
    stop = read_stopwords(snakemake.input.stopwords)
    log.info("tagging %d captions", len(captions))
    counts = count_nouns(
        captions, tagger, stop, progress=partial(tqdm, desc="captions", mininterval=10)
    )
    vocab = build_vocabulary(counts, p.top_k, classes)
else:
    vocab = read_word_list(snakemake.input.word_list)
    extra = [c for c in classes if c not in set(vocab["concept"])]
    vocab = pd.concat(
        [vocab, pd.DataFrame({"concept": extra, "count": 0, "source": "class"})], ignore_index=True
    )
log.info("%d concepts (%s)", len(vocab), vocab["source"].value_counts().to_dict())
write_table(vocab, snakemake.output.vocabulary)
