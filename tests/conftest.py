"""Shared fixtures: an isolated model cache, and one torch thread per test."""

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
