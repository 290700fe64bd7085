"""Dual-source Knowledge-rich Item indices (DKI) and the baseline indexers.

Modules: ``kmeans`` (balanced and hierarchical k-means), ``rq`` (residual k-means), ``dki``
(indexer registry, collision resolution, codebook usage), ``tokens`` (index tokens, bijection
check, :func:`add_index_tokens`), ``build`` (dataset -> index folder).
"""

from .build import IndexConfig, build_index
from .dki import INDEXERS, Codes, Indexer, make_indexer, resolve_collisions
from .tokens import (
    add_index_tokens,
    build_item_index,
    check_bijection,
    index_vocabulary,
    load_item_index,
    save_item_index,
)

__all__ = [
    "INDEXERS",
    "Codes",
    "IndexConfig",
    "Indexer",
    "add_index_tokens",
    "build_index",
    "build_item_index",
    "check_bijection",
    "index_vocabulary",
    "load_item_index",
    "make_indexer",
    "resolve_collisions",
    "save_item_index",
]
