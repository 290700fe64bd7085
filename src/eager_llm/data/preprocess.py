"""EAGER-LLM preprocessing: text filter, de-duplication, k-core, time order.

Each step takes and returns :class:`Interactions` (re-indexed compactly); :func:`preprocess`
chains them and reports how many rows, items and users each step removed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .schema import Interactions, ItemCatalog
from .split import MIN_LENGTH, short_users, short_users_error


def drop_items_without_text(interactions: Interactions, catalog: ItemCatalog) -> Interactions:
    """Remove the events of items missing from ``catalog`` or with a blank title."""
    has_text = np.array([catalog.has_text(item) for item in interactions.item_ids], dtype=bool)
    return interactions.take(has_text[interactions.items])


def drop_repeats(interactions: Interactions) -> Interactions:
    """Keep only the earliest event of each user-item pair (ties: the earliest row).

    Kept rows stay in their original order.
    """
    order = interactions.time_order()
    pairs = interactions.users[order] * interactions.n_items + interactions.items[order]
    _, first = np.unique(pairs, return_index=True)
    return interactions.take(np.sort(order[first]))


def k_core_filter(interactions: Interactions, k: int, *, user_k: int | None = None) -> Interactions:
    """Repeatedly drop users with fewer than ``user_k`` (default ``k``) events and items with
    fewer than ``k`` events, until none is left. Rows keep their order."""
    user_k = k if user_k is None else user_k
    users, items = interactions.users, interactions.items
    rows = np.arange(len(interactions))
    while True:
        user_counts = np.bincount(users[rows], minlength=interactions.n_users)
        item_counts = np.bincount(items[rows], minlength=interactions.n_items)
        keep = (user_counts[users[rows]] >= user_k) & (item_counts[items[rows]] >= k)
        if keep.all():
            return interactions.take(rows)
        rows = rows[keep]


def sort_by_time(interactions: Interactions) -> Interactions:
    """Rows ordered by user index, then time; ties keep their row order."""
    return interactions.take(interactions.time_order())


def preprocess(
    interactions: Interactions,
    catalog: ItemCatalog,
    *,
    k_core: int = 5,
    skip_invalid: bool = False,
) -> tuple[Interactions, ItemCatalog, dict[str, Any]]:
    """Apply the EAGER-LLM preprocessing, in order:

    1. drop items without text (no catalog entry or blank title);
    2. keep the first (earliest) event of each repeated user-item pair;
    3. iterative ``k_core`` filter (users and items keep >= ``k_core`` events);
    4. users with fewer than ``MIN_LENGTH`` events cannot be split: raise, or with
       ``skip_invalid`` drop them (re-running the k-core, as items may fall below ``k_core``);
    5. sort rows by user, then time (stable).

    Returns the events, the catalog of their items (in item index order) and a report: the
    raw counts (``raw_items`` counts items with events) and what each step removed.
    """
    report: dict[str, Any] = {
        "raw_users": interactions.n_users,
        "raw_items": interactions.n_items,
        "raw_interactions": len(interactions),
        "k_core": k_core,
    }
    with_text = drop_items_without_text(interactions, catalog)
    report["items_without_text"] = interactions.n_items - with_text.n_items
    report["interactions_without_text"] = len(interactions) - len(with_text)
    unique = drop_repeats(with_text)
    report["repeated_interactions"] = len(with_text) - len(unique)
    core = k_core_filter(unique, k_core)
    report["k_core_removed_interactions"] = len(unique) - len(core)
    short = short_users(core)
    if short and not skip_invalid:
        raise short_users_error(short)
    valid = k_core_filter(core, k_core, user_k=max(k_core, MIN_LENGTH)) if short else core
    report["short_users_skipped"] = core.n_users - valid.n_users
    result = sort_by_time(valid)
    return result, catalog.subset(result.item_ids), report
