"""Per-job set-up shared by the pipeline's scripts: logging, threads, seeds, versions.

Kept free of Snakemake: a script passes in its log path and thread count.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import random
import sys
from pathlib import Path

import numpy as np

__all__ = ["setup_job", "seed_everything", "gpu_numerics", "package_versions"]

log = logging.getLogger("deepunfold")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if imported) PyTorch, and ask PyTorch for determinism."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)


def gpu_numerics() -> None:
    """Ask CUDA for full float32 precision and reproducible kernels (no effect on the CPU).

    TF32 off for matrix products and cuDNN convolutions (on Ampere and later GPUs PyTorch
    would otherwise round convolution inputs to 10 mantissa bits), cuDNN's benchmark mode off
    and its deterministic algorithms on, and ``CUBLAS_WORKSPACE_CONFIG`` set so that cuBLAS
    is deterministic under ``torch.use_deterministic_algorithms`` (it must be set before CUDA
    starts, hence here, before any tensor reaches the GPU). Operations with no deterministic
    CUDA kernel only warn (``warn_only=True`` in :func:`seed_everything`); docs/gpu.md says
    which results can therefore differ from run to run on a GPU.
    """
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def setup_job(log_path: str | Path | None, threads: int = 1, seed: int | None = None):
    """Send stderr and the ``deepunfold`` logger to ``log_path``; cap threads; seed.

    With PyTorch imported it also sets :func:`gpu_numerics` (which changes nothing on the
    CPU). Returns the package logger.
    """
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "w", buffering=1)  # noqa: SIM115 - lives as long as the job
        sys.stderr = stream
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    threads = max(int(threads), 1)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)
        gpu_numerics()
    if seed is not None:
        seed_everything(seed)
    return log


def package_versions(names=None) -> dict[str, str]:
    """Installed versions of the packages that shape the results."""
    names = names or [
        "deepunfold",
        "torch",
        "torchvision",
        "numpy",
        "scipy",
        "pandas",
        "matplotlib",
        "pyarrow",
        "scikit-learn",
        "open_clip_torch",
        "snakemake",
    ]
    out = {"python": sys.version.split()[0]}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
