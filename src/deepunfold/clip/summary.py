"""Tables 1-3 of task 2: accuracy against sparsity, what storing the codes costs, and the
concepts the codes use most.

Each function takes what the code files hold (per-lambda summaries, CSR codes, file sizes)
and returns one table; reading and writing the files is the pipeline's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from deepunfold.clip.codes import csr_nbytes

__all__ = ["sparsity_accuracy_table", "memory_table", "concept_counts", "top_concepts"]


def sparsity_accuracy_table(summaries: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Table 1: the per-lambda summaries of the sparse-coding jobs, one row per lambda in
    increasing order, with the zero-shot accuracy also in percent (``accuracy_pct``)."""
    table = pd.concat(list(summaries)).sort_values("lambda")
    table.insert(3, "accuracy_pct", 100 * table["accuracy"])
    return table


def memory_table(
    n: int, d: int, dense_file_bytes: int, codes: Iterable[tuple[float, object, int]]
) -> pd.DataFrame:
    """Table 2: bytes of the dense ``n x d`` float32 embeddings and of each lambda's codes.

    Sparse codes are counted as a CSR matrix really stores them (float32 values, int32
    column indices and row pointers, :func:`~deepunfold.clip.codes.csr_nbytes`).

    Args:
        n, d: number of images and embedding dimension.
        dense_file_bytes: size of the dense embeddings' file.
        codes: ``(lambda, csr, file_bytes)`` per lambda.

    Returns:
        one row per representation (dense first, then by lambda), with the bytes in memory,
        in MB and as a ratio to the dense embeddings, and the file size.
    """
    rows = [
        {
            "representation": "dense float32 image embeddings",
            "lambda": float("nan"),
            "shape": f"{n}x{d}",
            "nnz": n * d,
            "values_bytes": n * d * 4,
            "indices_bytes": 0,
            "indptr_bytes": 0,
            "in_memory_bytes": n * d * 4,
            "parquet_bytes": dense_file_bytes,
        }
    ]
    for lam, csr, file_bytes in codes:
        b = csr_nbytes(csr)
        rows.append(
            {
                "representation": "sparse codes, CSR (float32 values, int32 indices)",
                "lambda": lam,
                "shape": f"{csr.shape[0]}x{csr.shape[1]}",
                "nnz": csr.nnz,
                "values_bytes": b["values"],
                "indices_bytes": b["indices"],
                "indptr_bytes": b["indptr"],
                "in_memory_bytes": b["total"],
                "parquet_bytes": file_bytes,
            }
        )
    table = pd.DataFrame(rows).sort_values("lambda", na_position="first")
    table["in_memory_mb"] = table["in_memory_bytes"] / 2**20
    table["ratio_to_dense"] = table["in_memory_bytes"] / (n * d * 4)
    return table


def concept_counts(csr, names: Sequence[str]) -> pd.DataFrame:
    """In how many signals each concept (column of the ``(signals, concepts)`` CSR codes) is
    active: columns ``concept``, ``nonzero_count``, most active first, ties by name."""
    counts = pd.Series((csr != 0).sum(0).A1, index=names)
    return pd.DataFrame({"concept": counts.index, "nonzero_count": counts.to_numpy()}).sort_values(
        ["nonzero_count", "concept"], ascending=[False, True]
    )


def top_concepts(csr, names: Sequence[str], top: int, lam: float) -> pd.DataFrame:
    """Table 3: the ``top`` most active concepts of the codes at ``lam`` (:func:`concept_counts`)
    with their ``rank``, count and fraction of the signals (images) that use them."""
    table = concept_counts(csr, names).head(top)
    table.insert(0, "rank", range(1, len(table) + 1))
    table["fraction_of_images"] = table["nonzero_count"] / csr.shape[0]
    table["lambda"] = lam
    return table
