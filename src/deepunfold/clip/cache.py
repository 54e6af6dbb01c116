"""Embedding caches: L2-normalised embeddings in Parquet, with their provenance.

One row per item (an image, a class prompt, a concept), columns

* ``id`` (int64): the item's index in its source (image index, class index, concept rank),
* ``name`` (string): a label name, class name or concept word ("" for unnamed images),
* ``label`` (int64): the ground-truth class of an image (-1 for texts),
* ``text`` (string): the prompt that was encoded ("" for images),
* ``embedding``: fixed-size list of ``dim`` float32, the L2-normalised embedding,

and in the Parquet schema metadata, under the key ``deepunfold.clip.cache``, a JSON
object with ``format`` (``FORMAT``), ``kind`` (``image`` or ``text``), ``n_rows``, ``dim``,
``model``, ``weights``, ``preprocessing``, ``dataset`` and any extra provenance. Reading
(:func:`read_embeddings`) checks all of it and raises :class:`EmbeddingCacheError` naming the
file for a truncated, foreign or inconsistent file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepunfold.io import atomic_path

__all__ = [
    "FORMAT",
    "META_KEY",
    "EmbeddingCacheError",
    "EmbeddingTable",
    "write_embeddings",
    "read_embeddings",
]

FORMAT = "deepunfold.clip.cache/1"
META_KEY = b"deepunfold.clip.cache"
REQUIRED_META = ("kind", "model", "weights", "preprocessing", "dataset")
NORM_TOL = 1e-4


class EmbeddingCacheError(ValueError):
    """An embedding cache file is missing, truncated, foreign or inconsistent."""


@dataclass
class EmbeddingTable:
    """The content of one cache file.

    Attributes:
        embeddings: ``(n, dim)`` float32, rows of unit L2 norm.
        ids, labels: ``(n,)`` int64.
        names, texts: lists of ``n`` strings.
        meta: the provenance dict (see module docstring).
    """

    embeddings: np.ndarray
    ids: np.ndarray
    names: list[str]
    labels: np.ndarray
    texts: list[str]
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])


def _schema(dim: int, meta: dict):
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.int64()),
            ("name", pa.string()),
            ("label", pa.int64()),
            ("text", pa.string()),
            ("embedding", pa.list_(pa.float32(), dim)),
        ],
        metadata={META_KEY: json.dumps(meta, sort_keys=True).encode()},
    )


def write_embeddings(
    path: str | Path,
    embeddings,
    *,
    kind: str,
    model: str,
    weights: str,
    preprocessing: str,
    dataset: str,
    ids=None,
    names=None,
    labels=None,
    texts=None,
    extra: dict | None = None,
) -> dict:
    """Write L2-normalised embeddings and their provenance to a Parquet file, atomically.

    Args:
        path: output ``.parquet`` file.
        embeddings: ``(n, dim)`` array or tensor; must already be L2-normalised (checked).
        kind: ``"image"`` or ``"text"``.
        model, weights, preprocessing, dataset: provenance strings stored in the metadata.
        ids, names, labels, texts: per-row columns (defaults: ``0..n-1``, "", -1, "").
        extra: further JSON-serialisable provenance.

    Returns:
        the metadata dict written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    emb = np.asarray(getattr(embeddings, "detach", lambda: embeddings)(), dtype=np.float32)
    if emb.ndim != 2 or emb.shape[1] < 1:
        raise ValueError(f"embeddings must be (n, dim), got shape {emb.shape}")
    if kind not in ("image", "text"):
        raise ValueError(f"kind must be 'image' or 'text', got {kind!r}")
    n, dim = emb.shape
    norms = np.linalg.norm(emb.astype(np.float64), axis=1)
    if n and np.abs(norms - 1).max() > NORM_TOL:
        raise ValueError(
            f"embeddings are not L2-normalised (norms in [{norms.min()}, {norms.max()}])"
        )
    ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    labels = np.full(n, -1, np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
    names = [""] * n if names is None else [str(s) for s in names]
    texts = [""] * n if texts is None else [str(s) for s in texts]
    for col, val in [("ids", ids), ("labels", labels), ("names", names), ("texts", texts)]:
        if len(val) != n:
            raise ValueError(f"{col} has {len(val)} entries for {n} embeddings")
    meta = {
        "format": FORMAT,
        "kind": kind,
        "n_rows": n,
        "dim": dim,
        "model": model,
        "weights": weights,
        "preprocessing": preprocessing,
        "dataset": dataset,
    }
    meta.update(extra or {})
    flat = pa.array(emb.reshape(-1), type=pa.float32())
    table = pa.Table.from_arrays(
        [
            pa.array(ids, pa.int64()),
            pa.array(names, pa.string()),
            pa.array(labels, pa.int64()),
            pa.array(texts, pa.string()),
            pa.FixedSizeListArray.from_arrays(flat, dim),
        ],
        schema=_schema(dim, meta),
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return meta


def read_embeddings(path: str | Path, kind: str | None = None) -> EmbeddingTable:
    """Read and validate a cache written by :func:`write_embeddings`.

    Raises :class:`EmbeddingCacheError` (naming ``path``) if the file is missing, is not
    Parquet or is truncated, lacks the cache metadata (a foreign file), has a different
    layout, a row count that disagrees with its metadata, non-normalised rows, or (when
    ``kind`` is given) holds the other kind of embeddings.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise EmbeddingCacheError(f"embedding cache {path} does not exist")
    try:
        pf = pq.ParquetFile(path)
        raw = (pf.schema_arrow.metadata or {}).get(META_KEY)
        if raw is None:
            raise EmbeddingCacheError(
                f"{path} is not an embedding cache of this pipeline (no "
                f"'{META_KEY.decode()}' schema metadata); rebuild it with the embedding rule"
            )
        meta = json.loads(raw)
        table = pf.read()
    except EmbeddingCacheError:
        raise
    except (pa.ArrowException, OSError, ValueError) as err:
        raise EmbeddingCacheError(
            f"embedding cache {path} is unreadable (truncated or corrupt?): {err}; "
            "delete it and rerun the rule that writes it"
        ) from err
    problems = []
    if meta.get("format") != FORMAT:
        problems.append(f"format {meta.get('format')!r}, expected {FORMAT!r}")
    problems += [f"metadata lacks '{k}'" for k in REQUIRED_META if k not in meta]
    dim = meta.get("dim")
    expected = _schema(int(dim), {}) if isinstance(dim, int) and dim > 0 else None
    if expected is None:
        problems.append(f"bad dim {dim!r} in metadata")
    elif not table.schema.remove_metadata().equals(expected.remove_metadata()):
        problems.append(f"columns {table.schema.remove_metadata()} differ from {expected}")
    if table.num_rows != meta.get("n_rows"):
        problems.append(f"{table.num_rows} rows but the metadata says {meta.get('n_rows')}")
    if kind is not None and meta.get("kind") != kind:
        problems.append(f"holds {meta.get('kind')!r} embeddings, expected {kind!r}")
    if problems:
        raise EmbeddingCacheError(f"invalid embedding cache {path}: " + "; ".join(problems))
    col = table.column("embedding").combine_chunks()
    emb = col.values.to_numpy(zero_copy_only=False).reshape(table.num_rows, int(dim))
    norms = np.linalg.norm(emb.astype(np.float64), axis=1)
    if table.num_rows and np.abs(norms - 1).max() > NORM_TOL:
        raise EmbeddingCacheError(f"invalid embedding cache {path}: rows are not unit-norm")
    return EmbeddingTable(
        embeddings=np.ascontiguousarray(emb, dtype=np.float32),
        ids=table.column("id").to_numpy(),
        names=table.column("name").to_pylist(),
        labels=table.column("label").to_numpy(),
        texts=table.column("text").to_pylist(),
        meta=meta,
    )
