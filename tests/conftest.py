"""Shared fixtures: an isolated model cache, one torch thread per test, and the device of
the device-aware tests."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Point the zoo's cache at an empty temporary folder."""
    monkeypatch.setenv("OBSERVE_EAGER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The test models are tiny: one thread beats two, and on a busy machine two threads
    spin against each other (measured 3-10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


DEVICE_ENV = "OBSERVE_EAGER_TEST_DEVICE"  # cpu (default) or cuda: experiments/gpu_check.py


@pytest.fixture
def compute_device():
    """Where a device-aware test computes: ``$OBSERVE_EAGER_TEST_DEVICE`` (default ``cpu``).
    On CUDA, TF32 is off while it runs, so fp32 matmuls and convolutions stay fp32."""
    device = os.environ.get(DEVICE_ENV, "cpu")
    if device == "cpu":
        yield device
        return
    if not torch.cuda.is_available():
        pytest.skip(f"{DEVICE_ENV}={device} but no CUDA device is available")
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield device
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
