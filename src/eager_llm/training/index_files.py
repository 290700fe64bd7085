"""An index folder (written by :func:`eager_llm.indexing.build_index`) and its dataset.

Read: ``item_index.json`` (item id -> tokens), ``items.json`` (item ids in the row order of
the embeddings), ``semantic_embeddings.npy`` (n_items, D_s), ``behaviour_embeddings.npy``
(n_items, D_b) and ``index_stats.json`` (``dataset`` and ``config.k_core`` /
``config.skip_invalid``: how the dataset was loaded; ``level_sources``: the source of each
index level). The dataset is reloaded the same way
and its item order must equal ``items.json``, so item ``i`` of the split is embedding row ``i``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eager_llm.data import Interactions, ItemCatalog, load_dataset
from eager_llm.indexing import load_item_index


@dataclass(frozen=True)
class IndexFiles:
    """Attributes: item_index (item id -> tokens); item_ids (n_items,) row order;
    semantic (n_items, D_s) and behaviour (n_items, D_b) float32; dataset, k_core and
    skip_invalid as used to build the index; level_sources (levels,) the source of each
    index level (empty when the stats predate it)."""

    item_index: dict[str, list[str]]
    item_ids: list[str]
    semantic: np.ndarray
    behaviour: np.ndarray
    dataset: str
    k_core: int
    skip_invalid: bool
    level_sources: tuple[str, ...] = ()


def load_index(folder: str | Path) -> IndexFiles:
    """Read an index folder; raises ``FileNotFoundError`` naming a missing file, ``ValueError``
    naming embeddings without one finite row per item."""
    folder = Path(folder)
    names = [
        "item_index.json",
        "items.json",
        "semantic_embeddings.npy",
        "behaviour_embeddings.npy",
        "index_stats.json",
    ]
    if missing := [name for name in names if not (folder / name).is_file()]:
        raise FileNotFoundError(f"{folder}: no {missing[0]} (build it with `eager-llm index`)")
    stats = json.loads((folder / "index_stats.json").read_text())
    files = IndexFiles(
        item_index=load_item_index(folder / "item_index.json"),
        item_ids=json.loads((folder / "items.json").read_text()),
        semantic=np.load(folder / "semantic_embeddings.npy").astype(np.float32),
        behaviour=np.load(folder / "behaviour_embeddings.npy").astype(np.float32),
        dataset=stats["dataset"],
        k_core=stats["config"]["k_core"],
        skip_invalid=stats["config"]["skip_invalid"],
        level_sources=tuple(stats.get("level_sources", ())),
    )
    for name in ("semantic", "behaviour"):
        vectors = getattr(files, name)
        if len(vectors) != len(files.item_ids):
            raise ValueError(f"{folder}: {name} embeddings do not have one row per item")
        if not (finite := np.isfinite(vectors).all(axis=1)).all():
            row = int(np.flatnonzero(~finite)[0])
            raise ValueError(
                f"{folder / f'{name}_embeddings.npy'}: row {row} (item {files.item_ids[row]}) "
                "holds a NaN or infinite value (rebuild the index)"
            )
    return files


def load_indexed_dataset(files: IndexFiles) -> tuple[Interactions, ItemCatalog]:
    """The dataset the index was built on, checked to list the items in ``items.json`` order."""
    interactions, catalog = load_dataset(
        files.dataset, k_core=files.k_core, skip_invalid=files.skip_invalid
    )
    if interactions.item_ids.tolist() != files.item_ids:
        raise ValueError(
            f"{files.dataset}: its items differ from the index's items.json (was the dataset "
            "changed after the index was built?)"
        )
    return interactions, catalog
