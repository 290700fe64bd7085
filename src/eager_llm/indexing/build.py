"""End to end: dataset -> embeddings (cached) -> codes -> item indices written to a folder.

``build_index(dataset, out)`` writes into ``out``:

- ``item_index.json``: item id -> list of index tokens;
- ``index_stats.json``: indexer, K, levels (and the source of each), codebook usage per
  level, collisions before resolution, number of new tokens, SASRec validation metrics,
  cache hits and the time of each stage;
- ``items.json``: item ids in row order of the embedding files;
- ``semantic_embeddings.npy`` (n_items, d_s) and ``behaviour_embeddings.npy`` (n_items, d_b);
- ``sasrec/``: the trained behaviour encoder (:meth:`SASRec.load`) and its training report.

Both embedding sources are always computed (and cached), whichever indexer is used, so every
output folder serves the later stages (GCT projector targets, SASRec baseline).
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from eager_llm.data import Interactions, ItemCatalog, leave_one_out, load_dataset
from eager_llm.encoders.behaviour import SASRecConfig, TrainConfig, train_sasrec
from eager_llm.encoders.cache import cached_folder, dataset_fingerprint, default_root, key_hash
from eager_llm.encoders.semantic import DEFAULT_MODEL, encode_texts, item_texts
from model_zoo import resolve

from .dki import (
    BEHAVIOUR,
    SEMANTIC,
    auto_k,
    codebook_usage,
    level_statistics,
    make_indexer,
    resolve_collisions,
)
from .tokens import build_item_index, check_bijection, index_vocabulary, save_item_index

EMBEDDINGS = "embeddings.npy"


@dataclass(frozen=True)
class IndexConfig:
    """Everything that shapes an index besides the dataset.

    ``cache_root`` None uses the default embedding cache
    (:func:`eager_llm.encoders.cache.default_root`). SASRec's ``max_len`` is replaced by the
    history length ``max_history``.
    """

    indexer: str = "dki"
    k: int | str = 256  # or "auto": :func:`~.dki.auto_k` of the catalogue size
    seed: int = 0
    k_core: int = 5
    skip_invalid: bool = False
    max_history: int = 20
    semantic_model: str = DEFAULT_MODEL
    sasrec: SASRecConfig = SASRecConfig()
    train: TrainConfig = TrainConfig()
    cache_root: str | None = None
    progress: bool = True


class Timer:
    """Wall-clock seconds of named stages."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)


def dataset_identity(name_or_path: str | Path, config: IndexConfig, fingerprint: str) -> dict:
    """What identifies the preprocessed dataset in cache keys."""
    path = Path(name_or_path)
    return {
        "dataset": str(path.resolve()) if path.exists() else str(name_or_path),
        "k_core": config.k_core,
        "skip_invalid": config.skip_invalid,
        "content_sha256": fingerprint,
    }


def semantic_embeddings(
    interactions: Interactions, catalog: ItemCatalog, identity: dict, config: IndexConfig
) -> tuple[np.ndarray, bool]:
    """(n_items, d_s) text embeddings in item index order and whether the cache had them."""
    texts = item_texts(catalog, interactions.item_ids.tolist())
    key = {
        **identity,
        "encoder": config.semantic_model,
        "encoder_path": resolve(config.semantic_model),
        "normalize": True,
    }

    def build(folder: Path) -> None:
        np.save(
            folder / EMBEDDINGS,
            encode_texts(texts, config.semantic_model, progress=config.progress),
        )

    folder, hit = cached_folder(SEMANTIC, key, build, root=config.cache_root)
    return np.load(folder / EMBEDDINGS), hit


def behaviour_encoder(
    interactions: Interactions, identity: dict, config: IndexConfig
) -> tuple[Path, bool]:
    """Folder of the trained SASRec (``model.pt``, ``config.json``, ``report.json``,
    ``embeddings.npy``) and whether the cache had it. The training checkpoints every epoch
    beside the cache entry (a file keyed like it), so an interrupted build (hours on
    MovieLens-1M) goes on where it stopped; the file goes once the entry is written."""
    sasrec = replace(config.sasrec, max_len=config.max_history)
    key = {
        **identity,
        "max_history": config.max_history,
        "sasrec": asdict(sasrec),
        "train": asdict(config.train),
    }
    root = Path(config.cache_root) if config.cache_root is not None else default_root()
    checkpoint = root / f".{BEHAVIOUR}-{key_hash(key)}.epoch.pt"

    def build(folder: Path) -> None:
        split = leave_one_out(interactions, max_history=config.max_history)
        model, report = train_sasrec(
            split, interactions.n_items, sasrec, config.train, progress=config.progress,
            checkpoint=checkpoint,
        )  # fmt: skip
        model.save(folder)
        (folder / "report.json").write_text(json.dumps(report, indent=1))
        np.save(folder / EMBEDDINGS, model.item_embeddings().detach().numpy())

    found = cached_folder(BEHAVIOUR, key, build, root=root)
    checkpoint.unlink(missing_ok=True)
    return found


def build_index(
    dataset: str | Path, out: str | Path, config: IndexConfig = IndexConfig()
) -> dict[str, Any]:
    """Build the item index of ``dataset`` (name or path) into ``out``; returns the stats."""
    if config.k != "auto" and not isinstance(config.k, int):
        raise ValueError(f"k must be an integer >= 2 or 'auto', got {config.k!r}")
    make_indexer(config.indexer, k=2 if config.k == "auto" else config.k)  # check the name
    timer = Timer()
    with timer.stage("load"):
        interactions, catalog = load_dataset(
            dataset, k_core=config.k_core, skip_invalid=config.skip_invalid
        )
        identity = dataset_identity(dataset, config, dataset_fingerprint(interactions, catalog))
    k = auto_k(interactions.n_items) if config.k == "auto" else config.k
    indexer = make_indexer(config.indexer, k=k, seed=config.seed)
    with timer.stage("behaviour"):
        sasrec_folder, behaviour_hit = behaviour_encoder(interactions, identity, config)
        behaviour = np.load(sasrec_folder / EMBEDDINGS)
    with timer.stage("semantic"):
        semantic, semantic_hit = semantic_embeddings(interactions, catalog, identity, config)
    with timer.stage("quantise"):
        codes = indexer.fit({SEMANTIC: semantic, BEHAVIOUR: behaviour})
    with timer.stage("collisions"):
        codes, collisions = resolve_collisions(codes)
        item_ids = interactions.item_ids.tolist()
        item_index = build_item_index(item_ids, codes.values)
        check_bijection(item_index)
    report = json.loads((sasrec_folder / "report.json").read_text())
    stats = {
        "dataset": identity["dataset"],  # a name, or an absolute path
        "indexer": config.indexer,
        "k": k,
        "num_items": len(item_ids),
        "levels": codes.values.shape[1],
        "level_sources": list(codes.level_sources),
        "codebook_usage": codebook_usage(codes, k),
        "level_statistics": level_statistics(codes),
        **collisions,
        "extra_tokens": int(codes.values[:, -1].max()) + 1 if collisions["extra_levels"] else 0,
        "num_tokens": len(index_vocabulary(item_index)),
        "sasrec_valid": report["valid"],
        "sasrec_best_epoch": report["best_epoch"],
        "cache_hits": {SEMANTIC: semantic_hit, BEHAVIOUR: behaviour_hit},
        "config": asdict(config),
    }
    with timer.stage("write"):
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        save_item_index(item_index, out / "item_index.json")
        (out / "items.json").write_text(json.dumps(item_ids))
        np.save(out / "semantic_embeddings.npy", semantic)
        np.save(out / "behaviour_embeddings.npy", behaviour)
        shutil.rmtree(out / "sasrec", ignore_errors=True)
        shutil.copytree(
            sasrec_folder, out / "sasrec", ignore=shutil.ignore_patterns("key.json", EMBEDDINGS)
        )
    stats["timings_s"] = timer.seconds
    (out / "index_stats.json").write_text(json.dumps(stats, indent=1))
    return stats
