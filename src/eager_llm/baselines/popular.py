"""Most-popular: the training items with the most interactions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .ranking import check_seen, top_k


def popularity(train: Sequence[np.ndarray], n_items: int) -> np.ndarray:
    """Interactions per item over the training sequences: int64 (n_items,)."""
    items = np.concatenate([np.asarray(sequence, dtype=np.int64) for sequence in train])
    return np.bincount(items, minlength=n_items)


def popularity_scores(train: Sequence[np.ndarray], n_items: int, n_users: int) -> np.ndarray:
    """(n_users, n_items) read-only view: every user scores items by training popularity."""
    return np.broadcast_to(popularity(train, n_items).astype(np.float64), (n_users, n_items))


def most_popular(
    train: Sequence[np.ndarray],
    n_items: int,
    n_users: int,
    k: int,
    *,
    histories: Sequence[Sequence[int]] | None = None,
    seen: str = "keep",
) -> list[list[int]]:
    """The ``k`` most interacted-with training items (ties: lower item index first) for each
    of ``n_users`` users: the same list under ``seen="keep"``; under ``seen="remove"`` each
    user's ``histories`` items are skipped. Validation and test targets are not counted.
    (Not RecBole 1.2.1's ``Pop``, which counts an item at most once per training batch.)"""
    check_seen(seen)
    counts = popularity(train, n_items)
    if seen == "keep":
        top = np.argsort(-counts, kind="stable")[:k].tolist()
        return [list(top) for _ in range(n_users)]
    if histories is None or len(histories) != n_users:
        raise ValueError("seen='remove' needs the histories of the n_users users")
    return top_k(popularity_scores(train, n_items, n_users), k, histories, seen)
