"""CLIP models through open_clip, and batched encoding of images and texts.

The real study uses ``ViT-B-32-quickgelu`` with OpenAI's weights (``pretrained="openai"``;
plain ``ViT-B-32`` builds GELU and mismatches those weights in recent open_clip). The
pipeline fetches the weights once into ``resources/`` (:func:`fetch_weights`) and from then
on loads the local checkpoint file, so that embedding jobs never touch the network. Tests and
the offline demo register small architectures from a config dict
(:func:`register_model_config`) and go through exactly the same code.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from deepunfold.io import MissingResourceError, atomic_path

__all__ = [
    "CIFAR10_CLASSES",
    "register_model_config",
    "load_model",
    "fetch_weights",
    "encode_images",
    "encode_texts",
    "preprocessing_description",
    "cifar10_test",
    "class_names",
    "image_dataset",
]

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]

_REGISTERED: dict[str, str] = {}


def register_model_config(name: str, cfg: dict | str | Path) -> str:
    """Register an open_clip architecture ``name`` from a config dict or JSON file.

    The config has open_clip's layout (``embed_dim``, ``vision_cfg``, ``text_cfg``, ...); a
    file may also wrap it as ``{"model_cfg": {...}}``. Registering the same config twice is a
    no-op; a different config under a known name is an error. Returns ``name``.
    """
    import open_clip

    if not isinstance(cfg, dict):
        cfg = json.loads(Path(cfg).read_text())
    cfg = cfg.get("model_cfg", cfg)
    missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in cfg]
    if missing:
        raise ValueError(f"model config for {name!r} lacks {missing}")
    text = json.dumps(cfg, sort_keys=True)
    if name in _REGISTERED:
        if _REGISTERED[name] != text:
            raise ValueError(f"model {name!r} is already registered with another config")
        return name
    if name in open_clip.list_models():
        raise ValueError(f"{name!r} is one of open_clip's own models; pick another name")
    # open_clip registers configs from files named <model name>.json
    folder = Path(tempfile.mkdtemp(prefix="deepunfold-openclip-"))
    (folder / f"{name}.json").write_text(text)
    open_clip.add_model_config(folder / f"{name}.json")
    _REGISTERED[name] = text
    return name


def load_model(
    model_name: str,
    pretrained: str | Path | None,
    *,
    model_config: dict | str | Path | None = None,
    device: str = "cpu",
):
    """An open_clip model in eval mode with its preprocessing and tokenizer.

    Args:
        model_name: open_clip architecture (e.g. ``"ViT-B-32-quickgelu"``).
        pretrained: a local checkpoint file (the pipeline's case), an open_clip pretrained
            tag such as ``"openai"`` (downloads), or ``None`` for random weights.
        model_config: register ``model_name`` from this config dict/JSON first (tiny models).
        device: torch device.

    Returns:
        ``(model, preprocess, tokenizer)``.
    """
    import open_clip

    if model_config is not None:
        register_model_config(model_name, model_config)
    if model_name not in open_clip.list_models():
        raise ValueError(f"unknown open_clip model {model_name!r}")
    if pretrained is not None and Path(str(pretrained)).suffix in (
        ".pt",
        ".pth",
        ".bin",
        ".safetensors",
    ):
        if not Path(pretrained).is_file():
            raise FileNotFoundError(f"checkpoint {pretrained} does not exist")
    model, _, preprocess = open_clip.create_model_and_transforms(
        model_name, pretrained=None if pretrained is None else str(pretrained), device=device
    )
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(model_name)


def fetch_weights(model_name: str, pretrained: str, out: str | Path, cache_dir: str | Path):
    """Download open_clip weights ``pretrained`` for ``model_name`` and save a local checkpoint.

    The state dict is written atomically to ``out``; later jobs load that file. Without
    network this raises :class:`MissingResourceError` saying which file to place where.
    """
    import open_clip

    out = Path(out)
    try:
        model = open_clip.create_model(model_name, pretrained=pretrained, cache_dir=str(cache_dir))
    except Exception as err:  # network errors come in many types
        raise MissingResourceError(
            f"open_clip weights {model_name!r} / {pretrained!r} could not be downloaded "
            f"({type(err).__name__}: {err}).\nPlace these files and rerun:\n  {out}\n"
            f"(a state dict saved with torch.save(model.state_dict()) of open_clip's "
            f"create_model({model_name!r}, pretrained={pretrained!r}) on a machine with "
            "network), or set config key 'clip.pretrained' to the path of a local checkpoint."
        ) from err
    with atomic_path(out) as tmp, open(tmp, "wb") as f:  # a file: no temp name in the archive
        torch.save(model.state_dict(), f)
    return out


def preprocessing_description(preprocess) -> str:
    """A one-line description of a torchvision transform pipeline (stored with the cache)."""
    return " ".join(str(preprocess).split())


def _autocast(device, mixed_precision: bool):
    """float16 autocast on CUDA if asked; a no-op context otherwise (never on the CPU)."""
    device = torch.device(device)
    if mixed_precision and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


@torch.inference_mode()
def encode_images(
    model,
    dataset,
    *,
    batch_size: int = 256,
    progress=None,
    device: str | torch.device = "cpu",
    mixed_precision: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised image embeddings of a dataset of ``(image_tensor, label)`` pairs.

    Returns ``(embeddings (n, d) float32, labels (n,) int64)``; ``progress`` wraps the batch
    iterator (e.g. ``functools.partial(tqdm, total=...)``). ``model`` must be on ``device``.
    On CUDA the batches are loaded into pinned memory and copied asynchronously;
    ``mixed_precision`` runs the model under float16 autocast there (ignored on the CPU, whose
    embeddings stay float32 throughout).
    """
    cuda = torch.device(device).type == "cuda"
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, pin_memory=cuda
    )
    batches = progress(loader) if progress is not None else loader
    embs, labels = [], []
    for images, y in batches:
        with _autocast(device, mixed_precision):
            e = model.encode_image(images.to(device, non_blocking=cuda), normalize=True)
        embs.append(e.float().cpu())
        labels.append(torch.as_tensor(y))
    return torch.cat(embs).numpy(), torch.cat(labels).numpy().astype(np.int64)


@torch.inference_mode()
def encode_texts(
    model,
    tokenizer,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    progress=None,
    device: str | torch.device = "cpu",
    mixed_precision: bool = False,
) -> np.ndarray:
    """L2-normalised text embeddings, ``(len(texts), d)`` float32 (``model`` on ``device``;
    ``mixed_precision``: float16 autocast on CUDA only, as in :func:`encode_images`)."""
    chunks = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
    embs = []
    for chunk in progress(chunks) if progress is not None else chunks:
        with _autocast(device, mixed_precision):
            e = model.encode_text(tokenizer(list(chunk)).to(device), normalize=True)
        embs.append(e.float().cpu())
    return torch.cat(embs).numpy() if embs else np.zeros((0, 0), np.float32)


def cifar10_test(root: str | Path, transform=None):
    """The CIFAR-10 test set (10,000 images) from a local torchvision folder (no download)."""
    import torchvision

    return torchvision.datasets.CIFAR10(
        root=str(root), train=False, download=False, transform=transform
    )


def class_names(dataset: str) -> list[str]:
    """Class names of an image set (``"cifar10"`` or ``"digits"``), in label order."""
    if dataset == "cifar10":
        return list(CIFAR10_CLASSES)
    if dataset == "digits":
        from deepunfold.clip.tinyclip import DIGIT_NAMES

        return list(DIGIT_NAMES)
    raise ValueError(f"unknown image set {dataset!r}; expected 'cifar10' or 'digits'")


def image_dataset(
    dataset: str,
    transform=None,
    *,
    cifar_root: str | Path = "resources/cifar10",
    test_fraction: float = 0.33,
    seed: int = 0,
):
    """The image set of the study as ``(torch Dataset, ids, description)``.

    ``"cifar10"``: the 10,000 CIFAR-10 test images from ``cifar_root`` (ids 0..9999).
    ``"digits"``: the held-out part of scikit-learn's digits (the demo; the rest trains the
    tiny CLIP), ids are the indices into ``load_digits()``. ``transform=None`` yields PIL
    images (for figures).
    """
    if dataset == "cifar10":
        ds = cifar10_test(cifar_root, transform)
        return ds, np.arange(len(ds)), f"CIFAR-10 test set ({len(ds)} images, {cifar_root})"
    if dataset == "digits":
        from deepunfold.clip.tinyclip import DigitImages
        from deepunfold.data.digits import digit_images_split

        images, labels, _, test_idx = digit_images_split(test_fraction, seed)
        ds = DigitImages(images[test_idx], labels[test_idx], transform)
        desc = (
            f"scikit-learn digits, held-out part ({len(test_idx)} images, "
            f"test_fraction={test_fraction}, seed={seed})"
        )
        return ds, test_idx, desc
    raise ValueError(f"unknown image set {dataset!r}; expected 'cifar10' or 'digits'")
