"""Summary numbers of a dataset, for ``eager-llm data stats``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .loaders import load_raw
from .preprocess import preprocess
from .schema import Interactions


def interaction_stats(interactions: Interactions) -> dict[str, Any]:
    """Users, items, interactions, density and mean sequence length."""
    users, items, count = interactions.n_users, interactions.n_items, len(interactions)
    return {
        "users": users,
        "items": items,
        "interactions": count,
        "density": count / (users * items) if users and items else 0.0,
        "mean_sequence_length": count / users if users else 0.0,
    }


def dataset_stats(
    name_or_path: str | Path, *, k_core: int = 5, skip_invalid: bool = False
) -> dict[str, Any]:
    """Statistics of the preprocessed dataset plus the preprocessing report (raw counts and
    what each step removed)."""
    raw, catalog = load_raw(name_or_path)
    interactions, _, report = preprocess(raw, catalog, k_core=k_core, skip_invalid=skip_invalid)
    return {"dataset": str(name_or_path), **interaction_stats(interactions), **report}
