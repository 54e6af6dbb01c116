"""The compute device of a job: ``auto``, ``cpu`` or ``cuda`` from the config, resolved once.

``auto`` picks CUDA when PyTorch sees a GPU and the CPU otherwise; ``cuda`` on a machine
without one is an error that names the config key, never a silent fallback (a run asked to
be on the GPU must not quietly take hours on the CPU). The chosen device is written to the
job's log by :func:`resolve_device` and into the job's result tables by the scripts, so the
figure manifest records where every number was computed.
"""

from __future__ import annotations

import logging

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(setting: str, key: str = "device", log: logging.Logger | None = None):
    """The ``torch.device`` for config value ``setting`` of config key ``key``."""
    import torch

    if setting not in DEVICES:
        raise ValueError(f"config key '{key}': {setting!r} is not one of {', '.join(DEVICES)}")
    requested = setting
    if setting == "auto":
        setting = "cuda" if torch.cuda.is_available() else "cpu"
    elif setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"config key '{key}' is 'cuda', but PyTorch sees no GPU here "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); "
            "use 'auto' to run on the CPU where there is none"
        )
    device = torch.device(setting)
    if log is not None:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        log.info("device: %s (%s; %s = %r)", device, name, key, requested)
    return device
