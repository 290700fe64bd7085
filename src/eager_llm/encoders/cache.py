"""Disk cache for computed embeddings and trained encoders, keyed by a hash of what made them.

An entry is a folder ``<root>/<kind>-<hash>/`` holding whatever the builder wrote plus
``key.json`` (the key, for humans). The key is a JSON-able mapping: the dataset identity
(name or path, preprocessing parameters and a fingerprint of the preprocessed content) and the
encoder configuration. Entries are published by an atomic rename of a fully written
temporary folder, so an interrupted build leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from eager_llm.data import Interactions, ItemCatalog
from model_zoo.cache import cache_root

KEY_FILE = "key.json"


def default_root() -> Path:
    """``<model zoo cache root>/embeddings`` (follows ``$OBSERVE_EAGER_CACHE``)."""
    return cache_root() / "embeddings"


def key_hash(key: Mapping[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON of ``key``."""
    canonical = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def dataset_fingerprint(interactions: Interactions, catalog: ItemCatalog) -> str:
    """SHA-256 of the preprocessed events (ids, order, times) and of the items' text."""
    digest = hashlib.sha256()
    for array in (interactions.users, interactions.items, interactions.timestamps):
        digest.update(np.ascontiguousarray(array).tobytes())
    for ids in (interactions.user_ids, interactions.item_ids):
        digest.update("\x00".join(map(str, ids)).encode())
    for item_id in interactions.item_ids:
        item = catalog[item_id]
        digest.update(json.dumps([item.title, item.categories, item.description]).encode())
    return digest.hexdigest()


def cached_folder(
    kind: str,
    key: Mapping[str, Any],
    build: Callable[[Path], None],
    *,
    root: str | Path | None = None,
) -> tuple[Path, bool]:
    """The folder of ``(kind, key)``, running ``build(folder)`` first when it is not cached.

    Returns ``(folder, hit)``; ``hit`` is True when the entry already existed.
    """
    root = Path(root) if root is not None else default_root()
    target = root / f"{kind}-{key_hash(key)}"
    if (target / KEY_FILE).is_file():
        return target, True
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        build(staging)
        (staging / KEY_FILE).write_text(json.dumps(key, indent=1, sort_keys=True, default=str))
        staging.rename(target)
    except OSError:
        if not (target / KEY_FILE).is_file():  # not a concurrent build that won the race
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, False
