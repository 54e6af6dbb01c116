"""The figure manifest behind the ``results/figures/all`` target."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from deepunfold.io import atomic_path
from deepunfold.pipeline.jobs import package_versions

__all__ = [
    "MEASUREMENTS_DIR",
    "is_measurement",
    "sha256",
    "job_devices",
    "build_manifest",
    "write_manifest",
]

# Wall-clock measurements of this machine (time per sample, job run times) live under this
# folder and nowhere else: they differ between any two runs by nature, so the manifest lists
# them without size or hash, and everything outside it must be byte-reproducible.
MEASUREMENTS_DIR = "results/benchmarks/"


def is_measurement(path: str | Path) -> bool:
    """True for a wall-clock measurement (a file under ``results/benchmarks/``)."""
    return Path(path).as_posix().startswith(MEASUREMENTS_DIR)


def sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


_DEVICE_LINE = re.compile(r" INFO device: (.+)$")


def job_devices(logs: str | Path) -> dict[str, str]:
    """The compute device of every job log under ``logs`` that names one.

    :func:`deepunfold.pipeline.device.resolve_device` logs one line
    ``device: <device> (<name>; <config key> = <setting>)`` per job; this maps each log's
    path (relative to the working directory, as the rules write it) to the text after
    ``device: `` of its last such line, e.g. ``"cpu (CPU; lista.device = 'auto')"`` or
    ``"cuda (NVIDIA A100-SXM4-40GB; lista.device = 'auto')"``. Logs without one (jobs that
    run NumPy/SciPy code only) are left out.
    """
    out = {}
    root = Path(logs)
    if not root.is_dir():
        return out
    for path in sorted(root.rglob("*.log")):
        found = None
        for line in path.read_text(errors="replace").splitlines():
            if m := _DEVICE_LINE.search(line):
                found = m.group(1)
        if found is not None:
            out[path.as_posix()] = found
    return out


def build_manifest(paths, config: dict, logs: str | Path | None = None) -> dict:
    """Describe each output with the config and package versions.

    Results are listed under ``files`` with path, kind, bytes and sha256; wall-clock
    measurements (:func:`is_measurement`) under ``measurements`` with path and kind only, so
    that two runs of the same config give the same manifest. With ``logs`` (the pipeline
    passes ``logs/``) the manifest also has ``devices``: :func:`job_devices`, where each
    PyTorch job ran. Raises ``FileNotFoundError`` naming the first missing output: a
    manifest is only ever written for a complete set.
    """
    entries, measurements = [], []
    for p in sorted(set(map(str, paths))):
        path = Path(p)
        if not path.is_file():
            raise FileNotFoundError(f"manifest input {p} does not exist")
        if is_measurement(p):
            measurements.append({"path": p, "kind": path.suffix.lstrip(".") or "file"})
            continue
        entries.append(
            {
                "path": p,
                "kind": path.suffix.lstrip(".") or "file",
                "bytes": path.stat().st_size,
                "sha256": sha256(path),
            }
        )
    manifest = {
        "n_files": len(entries),
        "files": entries,
        "measurements": measurements,
        "config": config,
        "versions": package_versions(),
    }
    if logs is not None:
        manifest["devices"] = job_devices(logs)
    return manifest


def write_manifest(paths, config: dict, out: str | Path, logs: str | Path | None = None) -> dict:
    """Build the manifest and write it as JSON, atomically (only once all inputs exist)."""
    manifest = build_manifest(paths, config, logs=logs)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
