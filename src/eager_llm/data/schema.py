"""In-memory representation of a recommendation dataset.

User and item ids are strings outside this package. Inside, every user and item gets a
contiguous integer index (``0..n-1``); ``Interactions.user_ids[u]`` and
``Interactions.item_ids[i]`` map an index back to its string id. Indices are assigned in
order of first appearance in the rows and keep that relative order when rows are removed.

Time order: by timestamp, and among events of a user with equal timestamps by row order
(``tie_order="file"``, the default: the earlier file row first, a stable sort) or by the
reverse of it (``"reversed"``: the later file row first). Only tied events move; the second
order measures how much the split depends on the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

TIE_ORDERS = ("file", "reversed")


def check_tie_order(tie_order: str) -> str:
    """``tie_order`` if it is one of :data:`TIE_ORDERS`; raises ``ValueError`` otherwise."""
    if tie_order not in TIE_ORDERS:
        raise ValueError(f"tie_order must be 'file' or 'reversed', got {tie_order!r}")
    return tie_order


@dataclass(frozen=True, eq=False)
class Interactions:
    """User-item events, one row per event, in a fixed row order.

    Attributes:
        user_ids: ``(n_users,)`` string id of each user index.
        item_ids: ``(n_items,)`` string id of each item index.
        users: ``(n,)`` int64 user index of each event.
        items: ``(n,)`` int64 item index of each event.
        timestamps: ``(n,)`` float64 time of each event.
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray

    @classmethod
    def from_ids(
        cls, users: Sequence[str], items: Sequence[str], timestamps: Sequence[float]
    ) -> Interactions:
        """Build from parallel sequences of string ids and times (rows keep their order)."""
        user_codes, user_ids = pd.factorize(np.asarray(users, dtype=object))
        item_codes, item_ids = pd.factorize(np.asarray(items, dtype=object))
        times = np.asarray(timestamps, dtype=np.float64)
        if not len(user_codes) == len(item_codes) == len(times):
            raise ValueError("users, items and timestamps must have the same length")
        return cls(
            user_ids, item_ids, user_codes.astype(np.int64), item_codes.astype(np.int64), times
        )

    def __len__(self) -> int:
        return len(self.users)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def take(self, rows: np.ndarray) -> Interactions:
        """Keep ``rows`` (boolean mask or indices, in that order) and re-index compactly."""
        users, items = self.users[rows], self.items[rows]
        kept_users, users = np.unique(users, return_inverse=True)
        kept_items, items = np.unique(items, return_inverse=True)
        return Interactions(
            self.user_ids[kept_users],
            self.item_ids[kept_items],
            users.astype(np.int64),
            items.astype(np.int64),
            self.timestamps[rows],
        )

    def time_order(self, tie_order: str = "file") -> np.ndarray:
        """Row indices sorted by user index, then time; events with equal times keep their row
        order (``"file"``, a stable sort) or take its reverse (``"reversed"``)."""
        rows = np.arange(len(self))
        if check_tie_order(tie_order) == "reversed":
            rows = rows[::-1]
        order = rows[np.argsort(self.timestamps[rows], kind="stable")]
        return order[np.argsort(self.users[order], kind="stable")]

    def sequences(self, tie_order: str = "file") -> list[np.ndarray]:
        """Item indices of each user (list position = user index), in time order (ties:
        ``tie_order``, see :meth:`time_order`)."""
        items = self.items[self.time_order(tie_order)]
        counts = np.bincount(self.users, minlength=self.n_users)
        ends = np.cumsum(counts)
        return [items[end - count : end] for count, end in zip(counts, ends, strict=True)]


@dataclass(frozen=True)
class ItemText:
    """The text known about one item."""

    title: str
    categories: tuple[str, ...] = ()
    description: str = ""

    @property
    def has_text(self) -> bool:
        """Whether the item has a non-blank title (the EAGER-LLM keep rule)."""
        return bool(self.title.strip())


@dataclass(frozen=True)
class ItemCatalog:
    """Item string id -> :class:`ItemText`."""

    items: dict[str, ItemText]

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.items

    def __getitem__(self, item_id: str) -> ItemText:
        return self.items[item_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.items)

    def has_text(self, item_id: str) -> bool:
        """Whether ``item_id`` is in the catalog with a non-blank title."""
        item = self.items.get(item_id)
        return item is not None and item.has_text

    def subset(self, item_ids: Iterable[str]) -> ItemCatalog:
        """The entries of ``item_ids``, in that order (all must be present)."""
        return ItemCatalog({item_id: self.items[item_id] for item_id in item_ids})


class Review(NamedTuple):
    """A user's review of an item: its one-line ``summary`` and its ``text``."""

    summary: str
    text: str


def reviews_by_user(
    interactions: Interactions, reviews: dict[tuple[str, str], Review]
) -> list[dict[int, Review]]:
    """Per user index, item index -> the review of each event's (user id, item id) pair that
    has one."""
    by_user: list[dict[int, Review]] = [{} for _ in range(interactions.n_users)]
    user_ids, item_ids = interactions.user_ids, interactions.item_ids
    for user, item in zip(interactions.users.tolist(), interactions.items.tolist(), strict=True):
        if (review := reviews.get((user_ids[user], item_ids[item]))) is not None:
            by_user[user][item] = review
    return by_user
