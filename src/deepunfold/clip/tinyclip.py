r"""The offline demo's backbone: a tiny open_clip CLIP trained on scikit-learn's digits.

Nothing here is downloaded. The images are the 1,797 8x8 handwritten digits that ship with
scikit-learn, split once (seeded) into a training part, on which the tiny CLIP learns, and a
held-out part, which plays the role of the CIFAR-10 test set. The architecture is an ordinary
open_clip ``CLIP`` registered from a config dict (:func:`tinyclip_config`), so the demo embeds
with exactly the code of the real study; only the weights differ.

Each training image gets a caption built from its class and simple visual attributes, e.g.
"a photo of a three, an odd prime number with curves, written bold". The class prompts of the
zero-shot test ("a photo of a three") are among the captions, and every word of the demo
concept list (:data:`DEMO_CONCEPTS`) occurs in them, so concept embeddings mean something.

Training minimises the symmetric contrastive (InfoNCE) loss of CLIP, with the captions that
are identical within a batch counted as positives of each other:

.. math::
    \mathcal L = -\tfrac{1}{2B} \sum_i \Big[\sum_j P_{ij} \log \mathrm{softmax}_j(s\, u_i^\top
    v_j) + \sum_j P_{ij} \log \mathrm{softmax}_j(s\, v_i^\top u_j)\Big],

with unit image/text embeddings :math:`u, v`, the learned scale :math:`s` and :math:`P_{ij}`
uniform over the images whose caption equals caption :math:`i`.
"""

from __future__ import annotations

import numpy as np
import torch

from deepunfold.train.loop import BatchSampler, FitResult, fit

__all__ = [
    "TINYCLIP_NAME",
    "DIGIT_NAMES",
    "DEMO_CONCEPTS",
    "tinyclip_config",
    "DigitImages",
    "digit_captions",
    "train_tinyclip",
]

TINYCLIP_NAME = "deepunfold-tinyclip"
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
PRIME = {2, 3, 5, 7}
SHAPES = {
    0: "loops",
    1: "lines",
    2: "curves",
    3: "curves",
    4: "lines",
    5: "curves",
    6: "loops",
    7: "lines",
    8: "loops",
    9: "loops",
}
# every word the captions use to describe an image; the demo concept list is drawn from these
DEMO_CONCEPTS = DIGIT_NAMES + [
    "even",
    "odd",
    "prime",
    "loops",
    "lines",
    "curves",
    "bold",
    "thin",
    "number",
    "digit",
]


def tinyclip_config(
    embed_dim: int = 32,
    vision_width: int = 16,
    text_width: int = 64,
    text_layers: int = 2,
    image_size: int = 32,
    context_length: int = 20,
) -> dict:
    """open_clip config of the tiny CLIP.

    Image tower: open_clip's ``ModifiedResNet`` with one bottleneck block per stage and
    attention pooling (a small CNN learns the digits in a few hundred steps, where a ViT
    trained from scratch on 1,200 images does not). Text tower: a ``text_layers``-layer
    transformer of width ``text_width`` over ``context_length`` tokens.
    """
    return {
        "embed_dim": embed_dim,
        "quick_gelu": True,
        "vision_cfg": {
            "image_size": image_size,
            "layers": [1, 1, 1, 1],
            "width": vision_width,
            "head_width": vision_width,
        },
        "text_cfg": {
            "context_length": context_length,
            "vocab_size": 49408,
            "width": text_width,
            "heads": max(text_width // 32, 1),
            "layers": text_layers,
        },
    }


class DigitImages(torch.utils.data.Dataset):
    """Digits as RGB PIL images (8x8) passed through a transform, with their labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        img = Image.fromarray(self.images[i]).convert("RGB")
        return (self.transform(img) if self.transform else img), int(self.labels[i])


def digit_captions(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> list[str]:
    """One caption per image from its class and attributes (template drawn with ``rng``).

    Attributes: parity, primality, the dominant stroke shape of the class, and the stroke
    weight ("bold" / "thin": ink above / below the median ink of the image's class).
    """
    ink = images.reshape(len(images), -1).astype(np.float64).sum(1)
    median = {k: np.median(ink[labels == k]) for k in np.unique(labels)}
    out = []
    for img_ink, k in zip(ink, labels, strict=True):
        name = DIGIT_NAMES[k]
        parity = "even" if k % 2 == 0 else "odd"
        prime = " prime" if k in PRIME else ""
        weight = "bold" if img_ink > median[k] else "thin"
        templates = [
            f"a photo of a {name}",
            f"a photo of a {name}, an {parity}{prime} number",
            f"a photo of a {name} digit with {SHAPES[k]}",
            f"a photo of a {weight} {name}",
            f"a photo of a {weight} {parity}{prime} digit {name} with {SHAPES[k]}",
        ]
        out.append(templates[rng.integers(len(templates))])
    return out


def _contrastive_loss(img, txt, scale, captions):
    same = torch.as_tensor(
        [[a == b for b in captions] for a in captions], dtype=img.dtype, device=img.device
    )
    target = same / same.sum(-1, keepdim=True)
    logits = scale * img @ txt.T
    loss_i = -(target * logits.log_softmax(-1)).sum(-1).mean()
    loss_t = -(target * logits.T.log_softmax(-1)).sum(-1).mean()
    return 0.5 * (loss_i + loss_t)


def _tinyclip_class():
    from open_clip.model import CLIP

    from deepunfold.train.checkpoint import Configurable

    class TinyCLIP(Configurable, CLIP):
        """open_clip's ``CLIP`` of :func:`tinyclip_config`, built from that function's
        arguments (so :func:`~deepunfold.train.checkpoint.save_model` can save it). Its state
        dict is the plain ``CLIP``'s: open_clip loads the saved file as a checkpoint too."""

        def __init__(
            self,
            embed_dim: int = 32,
            vision_width: int = 16,
            text_width: int = 64,
            text_layers: int = 2,
            image_size: int = 32,
            context_length: int = 20,
        ):
            cfg = tinyclip_config(
                embed_dim, vision_width, text_width, text_layers, image_size, context_length
            )
            super().__init__(
                cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"], quick_gelu=cfg["quick_gelu"]
            )

    TinyCLIP.__module__, TinyCLIP.__qualname__ = __name__, "TinyCLIP"
    return TinyCLIP


def __getattr__(name: str):
    # TinyCLIP derives from open_clip's CLIP: built on first use, so that importing this
    # module (e.g. for DIGIT_NAMES) does not import open_clip
    if name == "TinyCLIP":
        globals()["TinyCLIP"] = cls = _tinyclip_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def train_tinyclip(
    model,
    tokenizer,
    images: torch.Tensor,
    images_raw: np.ndarray,
    labels: np.ndarray,
    *,
    steps: int = 150,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    seed: int = 0,
    progress: bool = False,
    device: str | torch.device = "cpu",
) -> FitResult:
    """Train an open_clip CLIP in place on preprocessed digit images with fresh captions, through
    :func:`~deepunfold.train.loop.fit`.

    Args:
        model: an open_clip ``CLIP`` (e.g. a :class:`TinyCLIP`).
        tokenizer: its tokenizer.
        images: ``(n, 3, H, W)`` preprocessed training images.
        images_raw: ``(n, 8, 8)`` the same images as uint8 (for the caption attributes).
        labels: ``(n,)`` classes.
        steps, batch_size, lr, weight_decay: AdamW with a one-cycle cosine schedule; every
            step draws its batch from a fresh permutation.
        seed: seeds batches, caption templates and augmentation.
        progress: a tqdm bar over the steps.
        device: where the model and images are moved for training (the model stays there).
            Batches, captions and shifts are drawn on the CPU on every device; on the CPU
            (default) the arithmetic is exactly that of a call without it.

    Returns:
        the :class:`~deepunfold.train.loop.FitResult`; ``step_losses`` is the loss of every
        step. The model is left in evaluation mode.
    """
    rng = np.random.default_rng(seed)
    n = len(labels)

    def shift(batch, gen):
        # light augmentation: a random shift of up to one input pixel (image_size / 8)
        x, idx = batch
        s = x.shape[-1] // 8
        dx, dy = torch.randint(-s, s + 1, (2,), generator=gen).tolist()
        return torch.roll(x, shifts=(dy, dx), dims=(-2, -1)), idx

    def loss_fn(model, batch):
        x, idx = batch
        i = idx.cpu().numpy()
        caps = digit_captions(images_raw[i], labels[i], rng)
        img = model.encode_image(x, normalize=True)
        txt = model.encode_text(tokenizer(caps).to(x.device), normalize=True)
        return _contrastive_loss(img, txt, model.logit_scale.exp().clamp(max=100), caps)

    res = fit(
        model,
        (images, torch.arange(n)),
        loss_fn,
        max_steps=steps,
        sampler=BatchSampler(n, batch_size, seed, mode="fresh"),
        optimizer=lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=weight_decay),
        scheduler=lambda opt: torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1
        ),
        batch_transform=shift,
        device=device,
        progress=progress,
        name="tiny CLIP",
    )
    model.eval()
    return res
