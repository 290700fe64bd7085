"""Item indexers: embedding sources -> integer codes, collisions resolved and reported.

An :class:`Indexer` quantises each of its sources into per-level codes and concatenates them
in source order. The DKI index of EAGER-LLM is semantic codes then behaviour codes, each from
hierarchical balanced k-means; the other registered indexers are the baselines:

===============  =========================  ==============================
name             sources                    quantiser
===============  =========================  ==============================
``dki``          semantic, behaviour        hierarchical balanced k-means
``dki-bf``       behaviour, semantic        hierarchical balanced k-means
``semantic``     semantic                   hierarchical balanced k-means
``behaviour``    behaviour                  hierarchical balanced k-means
``rq-kmeans``    semantic, behaviour        residual k-means
``rq-bf``        behaviour, semantic        residual k-means
``rq-behav``     behaviour                  residual k-means
``rq-semantic``  semantic (TIGER's codes)   residual k-means
===============  =========================  ==============================

Two items whose full codes are equal collide. :func:`resolve_collisions` appends one
disambiguation level to every item (the item's rank within its group of equal codes, 0 for
items without collision), so all indices keep the same length, and reports the collision
rate measured before the extra level.

``dki-bf`` (behaviour first) is a deviation from the paper's order, kept for comparison: with
few items per first-level code the leading levels decide almost every item, so the order
chooses which source the ranking actually reads (results/eager_ml100k.md). ``rq-bf`` puts the
behaviour source first too, with residual codes: its second-level token means the same
residual direction under every first-level code, where a hierarchical second-level value
means a different sub-cluster under each parent. ``rq-behav`` is ``rq-bf`` without its
semantic levels (the single-source ablation). ``rq-semantic`` is TIGER's semantic ID:
residual quantisation of the text embeddings alone (TIGER trains an RQ-VAE; residual k-means
is the RQ-KMeans variant of the GRID / OpenOneRec line), with its collision level.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .kmeans import hierarchical_codes
from .rq import residual_kmeans_codes

SEMANTIC, BEHAVIOUR, SUFFIX = "semantic", "behaviour", "suffix"

Quantiser = Callable[..., np.ndarray]  # (embeddings (n, d), k, *, seed) -> codes (n, levels)


@dataclass(frozen=True)
class Codes:
    """Integer codes of every item and the source each level came from.

    Attributes:
        values: ``(n_items, levels)`` int64, row = item index.
        level_sources: ``(levels,)`` source name of each level (``"suffix"`` for the
            disambiguation level).
    """

    values: np.ndarray
    level_sources: tuple[str, ...]


class Indexer(Protocol):
    """Turns embeddings (source name -> ``(n_items, d)``) into codes (before collisions)."""

    sources: tuple[str, ...]

    def fit(self, embeddings: Mapping[str, np.ndarray]) -> Codes: ...


@dataclass(frozen=True)
class SourceIndexer:
    """Quantise each source with ``quantiser`` (``k`` clusters per level) and concatenate."""

    sources: tuple[str, ...]
    quantiser: Quantiser
    k: int = 256
    seed: int = 0

    def fit(self, embeddings: Mapping[str, np.ndarray]) -> Codes:
        parts = [
            self.quantiser(embeddings[source], self.k, seed=self.seed) for source in self.sources
        ]
        level_sources = tuple(
            source for source, part in zip(self.sources, parts, strict=True) for _ in part.T
        )
        return Codes(np.concatenate(parts, axis=1), level_sources)


INDEXERS: dict[str, tuple[tuple[str, ...], Quantiser]] = {
    "dki": ((SEMANTIC, BEHAVIOUR), hierarchical_codes),
    "dki-bf": ((BEHAVIOUR, SEMANTIC), hierarchical_codes),
    "semantic": ((SEMANTIC,), hierarchical_codes),
    "behaviour": ((BEHAVIOUR,), hierarchical_codes),
    "rq-kmeans": ((SEMANTIC, BEHAVIOUR), residual_kmeans_codes),
    "rq-bf": ((BEHAVIOUR, SEMANTIC), residual_kmeans_codes),
    "rq-behav": ((BEHAVIOUR,), residual_kmeans_codes),
    "rq-semantic": ((SEMANTIC,), residual_kmeans_codes),
}


def make_indexer(name: str, *, k: int = 256, seed: int = 0) -> Indexer:
    """The registered indexer ``name`` (see the module table)."""
    if name not in INDEXERS:
        raise ValueError(f"unknown indexer {name!r}; known: {', '.join(INDEXERS)}")
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    sources, quantiser = INDEXERS[name]
    return SourceIndexer(sources, quantiser, k, seed)


def resolve_collisions(codes: Codes) -> tuple[Codes, dict[str, float | int]]:
    """Make every row unique; returns the codes and a report.

    Without collisions the codes are returned unchanged. Otherwise one ``"suffix"`` level is
    appended: the rank of each item (in item order) among the items sharing its code.
    Report: ``collision_rate`` (items sharing their code with another item / items),
    ``colliding_items``, ``colliding_groups``, ``largest_group``, ``extra_levels``.
    """
    _, group, counts = np.unique(codes.values, axis=0, return_inverse=True, return_counts=True)
    group = group.reshape(-1)
    shared = counts[group] > 1
    report = {
        "collision_rate": float(shared.mean()),
        "colliding_items": int(shared.sum()),
        "colliding_groups": int((counts > 1).sum()),
        "largest_group": int(counts.max()),
        "extra_levels": int(shared.any()),
    }
    if not shared.any():
        return codes, report
    order = np.argsort(group, kind="stable")
    starts = np.cumsum(counts) - counts
    suffix = np.empty(len(group), dtype=np.int64)
    suffix[order] = np.arange(len(group)) - starts[group[order]]
    values = np.concatenate([codes.values, suffix[:, None]], axis=1)
    return Codes(values, (*codes.level_sources, SUFFIX)), report


def auto_k(n_items: int) -> int:
    """The ``k: auto`` rule: ``ceil(sqrt(n))`` clusters per level (at least 2), so each
    source gets two levels that both split real clusters (about sqrt(n) items per
    first-level code, about one per second-level code). K = 256 on 1,349 items instead
    leaves ~5 items per first-level code and a second level that only numbers them."""
    return max(2, math.isqrt(n_items - 1) + 1) if n_items > 1 else 2


def level_statistics(codes: Codes) -> list[dict[str, float | int | str]]:
    """Per level ``l``: its source, the distinct values at ``l``, the distinct prefixes
    (levels ``0..l``), the mean and largest number of items per prefix, and ``decided``: the
    share of items whose prefix through ``l`` already names them alone (the trie then
    forces every later token)."""
    rows = []
    for level, source in enumerate(codes.level_sources):
        _, counts = np.unique(codes.values[:, : level + 1], axis=0, return_counts=True)
        rows.append(
            {
                "level": level,
                "source": source,
                "values": len(np.unique(codes.values[:, level])),
                "prefixes": len(counts),
                "items_per_prefix_mean": round(float(counts.mean()), 2),
                "items_per_prefix_max": int(counts.max()),
                "decided": round(float((counts == 1).sum() / counts.sum()), 4),
            }
        )
    return rows


def codebook_usage(codes: Codes, k: int) -> list[dict[str, float | int | str]]:
    """Per level: its source, distinct codes used, codebook size (``k``; the largest suffix
    plus one for the suffix level) and the used fraction."""
    usage = []
    for level, source in enumerate(codes.level_sources):
        column = codes.values[:, level]
        size = int(column.max()) + 1 if source == SUFFIX else k
        used = len(np.unique(column))
        usage.append(
            {"level": level, "source": source, "used": used, "size": size, "usage": used / size}
        )
    return usage
