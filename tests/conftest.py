"""Shared fixtures: an isolated model cache for tests that build or damage cached models."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Point the zoo's cache at an empty temporary folder."""
    monkeypatch.setenv("OBSERVE_EAGER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
