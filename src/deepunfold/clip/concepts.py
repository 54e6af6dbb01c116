r"""Concept vocabularies and the alignment of image and concept embeddings.

Vocabulary (seed 001, the source report task 2 follows, section 2.2.2; docs/architecture.md,
Glossary): the ``top_k`` most frequent nouns (Penn tags NN, NNS)
of the Flickr30k captions (Karpathy's ``dataset_flickr30k.json``), after lower-casing and
dropping punctuation, numbers and stopwords, plus the class names, de-duplicated. Any
part-of-speech tagger can be passed in (a callable from a token list to ``(token, tag)``
pairs); :func:`load_nltk_tagger` loads NLTK's averaged perceptron from a local data folder.
A plain word list (:func:`read_word_list`) can replace the captions.

Alignment (the modality gap): with image embeddings :math:`z_i` (rows) and concept embeddings
:math:`a_j` (columns of :math:`A`),

.. math::
    \mu_{img} = \tfrac1n \textstyle\sum_i z_i, \quad \mu_c = \tfrac1c \sum_j a_j, \quad
    \tilde z_i = \frac{z_i - \mu_{img}}{\|z_i - \mu_{img}\|_2}, \quad
    \tilde a_j = \frac{a_j - \mu_c}{\|a_j - \mu_c\|_2}.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "NOUN_TAGS",
    "Alignment",
    "align",
    "load_karpathy_captions",
    "tokenize",
    "count_nouns",
    "build_vocabulary",
    "read_word_list",
    "read_stopwords",
    "load_nltk_tagger",
    "fetch_karpathy_captions",
    "fetch_nltk_data",
    "NLTK_PACKAGES",
]

NOUN_TAGS = ("NN", "NNS")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")

Tagger = Callable[[list[str]], list[tuple[str, str]]]


def load_karpathy_captions(path: str | Path) -> list[str]:
    """All raw captions of a Karpathy split file (``{"images": [{"sentences": [{"raw"}]}]}``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        captions = [s["raw"] for img in data["images"] for s in img["sentences"]]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(
            f"{path} is not a Karpathy caption file (expected "
            f'{{"images": [{{"sentences": [{{"raw": ...}}]}}]}}): {err!r}'
        ) from err
    if not captions:
        raise ValueError(f"{path} holds no captions")
    return captions


def tokenize(caption: str) -> list[str]:
    """Lower-cased word tokens; punctuation and numbers are dropped."""
    return _WORD.findall(caption.lower())


def count_nouns(
    captions: Iterable[str],
    tagger: Tagger,
    stopwords: Iterable[str] = (),
    tags: Iterable[str] = NOUN_TAGS,
    progress=None,
) -> Counter:
    """Occurrences of each noun (tag in ``tags``) over the captions, stopwords removed.

    Each caption is tagged as a whole sentence (context matters to the tagger); a word counts
    once per occurrence. Words of one letter are dropped.
    """
    stop, tags = set(stopwords), set(tags)
    counts: Counter = Counter()
    for caption in captions if progress is None else progress(captions):
        tokens = tokenize(caption)
        if not tokens:
            continue
        counts.update(w for w, t in tagger(tokens) if t in tags and w not in stop and len(w) > 1)
    return counts


def build_vocabulary(
    counts: Counter | dict, top_k: int, class_names: Iterable[str] = ()
) -> pd.DataFrame:
    """The ``top_k`` most frequent words plus the class names, de-duplicated.

    Ties in frequency are broken alphabetically, so the vocabulary is deterministic. Returns a
    table with columns ``concept``, ``count`` (occurrences in the captions, 0 for a class name
    that never occurs) and ``source`` (``captions``, ``class`` or ``captions+class``), in
    order: the top-k words by count, then the class names not among them.
    """
    if top_k < 0:
        raise ValueError(f"top_k must be non-negative, got {top_k}")
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]
    rows = {w: {"concept": w, "count": int(c), "source": "captions"} for w, c in ranked}
    for name in class_names:
        name = name.strip().lower()
        if name in rows:
            rows[name]["source"] = "captions+class"
        else:
            rows[name] = {"concept": name, "count": int(counts.get(name, 0)), "source": "class"}
    return pd.DataFrame(list(rows.values()), columns=["concept", "count", "source"])


def read_word_list(path: str | Path) -> pd.DataFrame:
    """A plain word list: one concept per line (optionally ``word<TAB>count``), ``#`` comments.

    Words are lower-cased and de-duplicated (first occurrence kept). Returns the same columns
    as :func:`build_vocabulary` (``count`` 0 where none is given, ``source`` ``list``).
    """
    rows: dict[str, dict] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split("\t")
        word = parts[0].strip().lower()
        try:
            count = int(parts[1]) if len(parts) > 1 else 0
        except ValueError as err:
            raise ValueError(f"{path}:{n}: count {parts[1]!r} is not an integer") from err
        rows.setdefault(word, {"concept": word, "count": count, "source": "list"})
    if not rows:
        raise ValueError(f"word list {path} is empty")
    return pd.DataFrame(list(rows.values()), columns=["concept", "count", "source"])


def read_stopwords(path: str | Path) -> set[str]:
    """Stopwords from a file with one word per line (e.g. NLTK's ``corpora/stopwords/english``)."""
    return {w.strip().lower() for w in Path(path).read_text().splitlines() if w.strip()}


def load_nltk_tagger(data_dir: str | Path) -> Tagger:
    """NLTK's averaged-perceptron English tagger loaded from a local ``nltk_data`` folder.

    The folder must hold ``taggers/averaged_perceptron_tagger_eng`` (fetched by the pipeline's
    ``download_nltk_data`` rule). NLTK's global data path is not modified.
    """
    from nltk.tag.perceptron import PerceptronTagger

    folder = Path(data_dir) / "taggers" / "averaged_perceptron_tagger_eng"
    tagger = PerceptronTagger(load=False)
    files = [folder / name for name in tagger.param_files("eng")]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"NLTK tagger data missing: {', '.join(missing)}")
    # read the three JSON files directly: NLTK's own loader only trusts its data path
    tagger.decode_json_params(json.loads(f.read_text()) for f in files)
    return tagger.tag


@dataclass
class Alignment:
    """Aligned embeddings (see module docstring).

    Attributes:
        z: ``(n, d)`` centred, renormalised image embeddings.
        A: ``(d, c)`` centred, renormalised concept dictionary (concepts as columns).
        image_mean: ``(d,)`` :math:`\\mu_{img}`.
        concept_mean: ``(d,)`` :math:`\\mu_c`.
    """

    z: np.ndarray
    A: np.ndarray
    image_mean: np.ndarray
    concept_mean: np.ndarray


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("an embedding equals the mean and cannot be renormalised")
    return x / norms


def align(image_emb, concept_emb) -> Alignment:
    r"""Centre images and concepts by their own means and renormalise (seed 001, 2.2.2).

    Args:
        image_emb: ``(n, d)`` image embeddings (rows).
        concept_emb: ``(c, d)`` concept embeddings (rows, as cached).

    Returns:
        :class:`Alignment` in float64, with the dictionary as ``(d, c)`` columns.
    """
    z = np.asarray(image_emb, dtype=np.float64)
    a = np.asarray(concept_emb, dtype=np.float64)
    if z.ndim != 2 or a.ndim != 2 or z.shape[1] != a.shape[1]:
        raise ValueError(f"need (n, d) images and (c, d) concepts, got {z.shape} and {a.shape}")
    mu_img, mu_c = z.mean(0), a.mean(0)
    return Alignment(
        z=_normalise_rows(z - mu_img),
        A=np.ascontiguousarray(_normalise_rows(a - mu_c).T),
        image_mean=mu_img,
        concept_mean=mu_c,
    )


KARPATHY_URL = "https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip"


def fetch_karpathy_captions(out: str | Path, url: str = KARPATHY_URL) -> Path:
    """Download Karpathy's caption splits and keep ``dataset_flickr30k.json`` as ``out``.

    Raises :class:`~deepunfold.io.MissingResourceError` naming ``out`` when offline.
    """
    import io
    import urllib.request
    import zipfile

    from deepunfold.io import MissingResourceError, atomic_path

    out = Path(out)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            data = resp.read()
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            member = next(n for n in zf.namelist() if n.endswith("dataset_flickr30k.json"))
            payload = zf.read(member)
    except Exception as err:  # network and archive errors come in many types
        raise MissingResourceError(
            f"Flickr30k captions (Karpathy split) are not available and could not be "
            f"downloaded here ({type(err).__name__}: {err}).\nPlace these files and rerun:\n"
            f"  {out}\nGet caption_datasets.zip from {url} (or any copy of Karpathy's splits) "
            "and extract dataset_flickr30k.json there; or set config key "
            "'clip.concepts.source' to 'file' with a plain word list."
        ) from err
    with atomic_path(out) as tmp:
        tmp.write_bytes(payload)
    return out


NLTK_PACKAGES = {
    "averaged_perceptron_tagger_eng": [
        "taggers/averaged_perceptron_tagger_eng/averaged_perceptron_tagger_eng.weights.json",
        "taggers/averaged_perceptron_tagger_eng/averaged_perceptron_tagger_eng.tagdict.json",
        "taggers/averaged_perceptron_tagger_eng/averaged_perceptron_tagger_eng.classes.json",
    ],
    "stopwords": ["corpora/stopwords/english"],
}


def fetch_nltk_data(root: str | Path) -> list[Path]:
    """Download NLTK's English POS tagger and stopwords into ``root`` (an ``nltk_data`` folder).

    Raises :class:`~deepunfold.io.MissingResourceError` naming the files to place.
    """
    import nltk

    from deepunfold.io import require_files

    root = Path(root)
    files = [root / f for files in NLTK_PACKAGES.values() for f in files]
    if not all(f.is_file() for f in files):
        for package in NLTK_PACKAGES:
            try:
                nltk.download(package, download_dir=str(root), quiet=True, raise_on_error=True)
            except Exception:  # noqa: S112 - the check below names what is missing
                continue
    require_files(
        files,
        "NLTK tagger/stopwords data",
        "Get them with `python -m nltk.downloader -d "
        f"{root} averaged_perceptron_tagger_eng stopwords` on a machine with network.",
    )
    return files
