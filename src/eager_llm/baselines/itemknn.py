"""ItemKNN: item-item cosine similarity on the training user-item matrix.

``X`` is the binary (users, items) matrix of the training sequences. The similarity of items
``i`` and ``j`` is ``X_i . X_j / (|X_i| |X_j| + shrink)`` (cosine with shrinkage, as
RecBole's ``ItemKNN``), 0 on the diagonal; each item keeps its ``neighbours`` most similar
items (the rest 0). A user with history ``h`` scores item ``j`` by ``sum_{i in h} S[i, j]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .popular import popularity
from .ranking import check_seen, top_k


@dataclass(frozen=True)
class ItemKNNConfig:
    """Hyper-parameters of :func:`item_similarity`; ``neighbours`` None keeps all."""

    neighbours: int | None = 100
    shrink: float = 0.0


def interaction_matrix(train: Sequence[np.ndarray], n_items: int) -> sparse.csr_matrix:
    """(n_users, n_items) sparse, 1 where the user's training sequence holds the item."""
    rows = np.concatenate([np.full(len(s), u) for u, s in enumerate(train)] or [np.zeros(0)])
    cols = np.concatenate([np.asarray(s, dtype=np.int64) for s in train] or [np.zeros(0)])
    matrix = sparse.csr_matrix(
        (np.ones(len(rows)), (rows.astype(np.int64), cols.astype(np.int64))),
        shape=(len(train), n_items),
    )
    matrix.data[:] = 1.0  # a repeated item counts once
    return matrix


def item_overlap(train: Sequence[np.ndarray], n_items: int) -> np.ndarray:
    """(n_items, n_items) float64: users whose training sequences hold both items."""
    matrix = interaction_matrix(train, n_items)
    return (matrix.T @ matrix).toarray()


def item_similarity(
    train: Sequence[np.ndarray],
    n_items: int,
    config: ItemKNNConfig = ItemKNNConfig(),
    overlap: np.ndarray | None = None,
) -> np.ndarray:
    """(n_items, n_items) shrunk cosine similarity, each row cut to its ``neighbours`` largest
    entries (ties: lower item index kept). ``overlap``: :func:`item_overlap`, when known."""
    if config.shrink < 0:
        raise ValueError(f"shrink must be >= 0, got {config.shrink}")
    if config.neighbours is not None and config.neighbours < 1:
        raise ValueError(f"neighbours must be >= 1, got {config.neighbours}")
    if overlap is None:
        overlap = item_overlap(train, n_items)
    norms = np.sqrt(np.diag(overlap))
    similarity = overlap / (np.outer(norms, norms) + config.shrink + 1e-12)
    np.fill_diagonal(similarity, 0.0)
    if config.neighbours is not None and config.neighbours < n_items:
        drop = np.argsort(-similarity, axis=1, kind="stable")[:, config.neighbours :]
        np.put_along_axis(similarity, drop, 0.0, axis=1)
    return similarity


def itemknn_scores(similarity: np.ndarray, histories: Sequence[Sequence[int]]) -> np.ndarray:
    """(len(histories), n_items): each history's summed similarity rows."""
    scores = np.zeros((len(histories), len(similarity)))
    for row, history in enumerate(histories):
        items = np.unique(np.asarray(history, dtype=np.int64))
        scores[row] = similarity[items].sum(0)
    return scores


def itemknn_rankings(
    train: Sequence[np.ndarray],
    histories: Sequence[Sequence[int]],
    k: int,
    *,
    n_items: int,
    config: ItemKNNConfig = ItemKNNConfig(),
    seen: str = "keep",
) -> list[list[int]]:
    """Top-``k`` item indices per history, best first; ties go to the more popular training
    item, then the lower index."""
    check_seen(seen)
    scores = itemknn_scores(item_similarity(train, n_items, config), histories)
    return top_k(scores, k, histories, seen, tiebreak=popularity(train, n_items))
