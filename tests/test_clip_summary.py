"""Task 2's tables: accuracy by lambda, the bytes of the codes, the most active concepts."""

import math

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepunfold.clip.summary import (
    concept_counts,
    memory_table,
    sparsity_accuracy_table,
    top_concepts,
)

CODES = sp.csr_matrix(
    np.array(
        [
            [0.5, 0.0, 1.0, 0.0],
            [0.0, 0.0, 2.0, 0.3],
            [0.1, 0.0, 0.0, 0.2],
        ],
        dtype=np.float32,
    )
)
NAMES = ["dog", "cat", "bird", "ant"]


def test_concept_counts_most_active_first_ties_by_name():
    counts = concept_counts(CODES, NAMES)
    # bird, ant and dog are active in 2 images each (alphabetical), cat in none
    assert counts["concept"].tolist() == ["ant", "bird", "dog", "cat"]
    assert counts["nonzero_count"].tolist() == [2, 2, 2, 0]


def test_top_concepts_table():
    table = top_concepts(CODES, NAMES, top=2, lam=0.05)
    assert table.columns.tolist() == [
        "rank",
        "concept",
        "nonzero_count",
        "fraction_of_images",
        "lambda",
    ]
    assert table["rank"].tolist() == [1, 2] and table["concept"].tolist() == ["ant", "bird"]
    np.testing.assert_allclose(table["fraction_of_images"], [2 / 3, 2 / 3])
    assert (table["lambda"] == 0.05).all()


def test_memory_table_counts_csr_bytes():
    table = memory_table(3, 4, 999, [(0.5, CODES, 123), (0.1, CODES, 456)])
    assert math.isnan(table["lambda"].iloc[0]) and table["lambda"].iloc[1:].tolist() == [0.1, 0.5]
    dense = table.iloc[0]
    assert dense["in_memory_bytes"] == 3 * 4 * 4 and dense["ratio_to_dense"] == 1.0
    sparse = table.iloc[1]
    # 6 float32 values + 6 int32 column indices + 4 int32 row pointers
    assert sparse["nnz"] == 6 and sparse["in_memory_bytes"] == 6 * 4 + 6 * 4 + 4 * 4
    assert sparse["parquet_bytes"] == 456 and sparse["shape"] == "3x4"
    assert sparse["ratio_to_dense"] == (64 / 48)


def test_sparsity_accuracy_table_sorts_by_lambda():
    summaries = [
        pd.DataFrame({"lambda": [lam], "nnz": [n], "seconds": [1.0], "accuracy": [acc]})
        for lam, n, acc in [(0.5, 3.0, 0.4), (0.05, 30.0, 0.8)]
    ]
    table = sparsity_accuracy_table(summaries)
    assert table["lambda"].tolist() == [0.05, 0.5]
    assert table.columns[3] == "accuracy_pct"
    np.testing.assert_allclose(table["accuracy_pct"], [80.0, 40.0])
