"""A hand-made toy catalogue: a dataset of 6 users and 10 items (RecBole atomic files) and a
two-level index folder for it, written in milliseconds. For tests and for checks that need a
trained run end to end without a real dataset (``experiments/gpu_check.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from eager_llm.data import load_dataset
from eager_llm.indexing import save_item_index

N_ITEMS = 10
SEQUENCES = {  # user -> items in time order
    "u0": [0, 1, 2, 3, 4, 5],
    "u1": [2, 3, 4, 5, 6],
    "u2": [6, 7, 8, 9, 0, 1, 2],
    "u3": [9, 8, 7, 6],
    "u4": [1, 3, 5, 7, 9],
    "u5": [0, 2, 4, 6, 8],
}


def write_dataset(folder: Path) -> Path:
    """``toy.inter`` and ``toy.item`` of :data:`SEQUENCES` in ``folder``; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user, items in SEQUENCES.items():
        rows += [f"{user}\ti{item}\t{time}" for time, item in enumerate(items)]
    (folder / "toy.inter").write_text("\n".join(rows) + "\n")
    items = ["item_id:token\ttitle:token_seq\tgenre:token_seq"]
    items += [f"i{i}\tMovie {i}\t{'Drama' if i % 2 else 'Comedy'}" for i in range(N_ITEMS)]
    (folder / "toy.item").write_text("\n".join(items) + "\n")
    return folder


def write_index(folder: Path, dataset: Path) -> Path:
    """Item ``i`` -> ``<a_{i // 4}><b_{i % 4}>`` (a semantic and a behaviour level) and
    random 8-d semantic and 6-d behaviour embeddings."""
    interactions, _ = load_dataset(dataset, k_core=1)
    item_ids = interactions.item_ids.tolist()
    folder.mkdir(parents=True, exist_ok=True)
    index = {
        item_id: [f"<a_{int(item_id[1:]) // 4}>", f"<b_{int(item_id[1:]) % 4}>"]
        for item_id in item_ids
    }
    save_item_index(index, folder / "item_index.json")
    (folder / "items.json").write_text(json.dumps(item_ids))
    rng = np.random.default_rng(0)
    np.save(folder / "semantic_embeddings.npy", rng.normal(size=(len(item_ids), 8)))
    np.save(folder / "behaviour_embeddings.npy", rng.normal(size=(len(item_ids), 6)))
    stats = {"dataset": str(dataset), "config": {"k_core": 1, "skip_invalid": False}}
    (folder / "index_stats.json").write_text(json.dumps(stats))
    return folder


def toy_index(root: Path) -> Path:
    """The toy dataset in ``root/data`` and its index in ``root/index``; returns the index."""
    return write_index(root / "index", write_dataset(root / "data"))
