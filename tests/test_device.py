"""Device selection: auto, cpu and cuda, with errors that name the config key."""

import logging

import pytest
import torch

from deepunfold.pipeline.device import resolve_device


def test_auto_follows_cuda_availability(caplog):
    log = logging.getLogger("test-device")
    with caplog.at_level(logging.INFO, logger="test-device"):
        dev = resolve_device("auto", "rpca.train.device", log)
    assert dev.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert "rpca.train.device = 'auto'" in caplog.text


def test_cpu_is_cpu():
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_names_the_key():
    with pytest.raises(RuntimeError, match="config key 'lista.train.device' is 'cuda'"):
        resolve_device("cuda", "lista.train.device")


def test_unknown_device_names_the_key():
    with pytest.raises(ValueError, match="config key 'clip.device': 'gpu' is not one of"):
        resolve_device("gpu", "clip.device")
