"""Synthetic Amazon 2014 files of a chosen size, for tests and benchmarks at realistic scale.

:func:`write_amazon_2014` writes ``reviews_CATEGORY_5.json.gz`` (one JSON review per line,
with ``summary`` and ``reviewText``) and ``meta_CATEGORY.json.gz`` (Python-literal lines),
the files :func:`eager_llm.data.load_raw` reads. Items fall into ``groups`` (default: one per
200 items; item ``i`` in group ``i % groups``, which names its category); each user prefers one
group and draws 80 % of its items from it, popular ones more often (rank ``r`` of a group
with density ~ ``1 / sqrt(r)``). Every item is drawn at least ``5`` times and every user
draws ``5`` or more (geometric lengths of mean ``mean_length``), so the 5-core keeps nearly
everything (a repeated user-item pair is dropped by preprocessing). Deterministic in ``seed``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

WORDS = ["soft", "bright", "gentle", "rich", "light", "fresh", "smooth", "classic",
    "daily", "travel", "natural", "deep", "clear", "silky", "matte", "glossy", "warm",
    "cool", "floral", "citrus", "herbal", "mild", "strong", "long", "lasting", "quick"]  # fmt: skip
NOUNS = ["cream", "serum", "lotion", "brush", "palette", "mask", "oil", "shampoo", "balm",
    "polish", "gel", "mist"]  # fmt: skip
MIN_COUNT = 5


def _events(
    rng: np.random.Generator, users: int, items: int, groups: int, mean_length: float
) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) of every event: each item ``MIN_COUNT`` times at random places, the rest
    from the users' groups and the whole catalogue."""
    lengths = MIN_COUNT + rng.geometric(1 / (mean_length - MIN_COUNT + 1), users) - 1
    user = np.repeat(np.arange(users), lengths)
    if len(user) < MIN_COUNT * items:
        raise ValueError(
            f"{users} users of mean length {mean_length} draw too few events for {items} items"
        )
    preferred = rng.integers(0, groups, users)[user]
    group = np.where(rng.random(len(user)) < 0.8, preferred, rng.integers(0, groups, len(user)))
    group_size = (items - group + groups - 1) // groups  # items i < items with i % groups == g
    rank = np.floor(group_size * rng.random(len(user)) ** 2).astype(np.int64)
    item = rank * groups + group
    covered = rng.permutation(len(user))[: MIN_COUNT * items]
    item[covered] = np.repeat(np.arange(items), MIN_COUNT)
    return user, item


def write_amazon_2014(
    folder: str | Path,
    *,
    users: int,
    items: int,
    category: str = "Synthetic",
    groups: int | None = None,
    mean_length: float = 9.0,
    seed: int = 0,
) -> Path:
    """Write the review and metadata files into ``folder``; returns the review file."""
    rng = np.random.default_rng(seed)
    groups = groups or max(1, items // 200)
    user, item = _events(rng, users, items, groups, mean_length)
    times = 1_300_000_000 + rng.integers(0, 100_000_000, len(user))
    words = np.asarray(WORDS, dtype=object)
    text = words[rng.integers(0, len(WORDS), (len(user), 24))]
    summary = words[rng.integers(0, len(WORDS), (len(user), 3))]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    reviews = folder / f"reviews_{category}_5.json.gz"
    with gzip.open(reviews, "wt", encoding="utf-8", compresslevel=1) as file:
        for n in range(len(user)):
            record = {
                "reviewerID": f"U{user[n]}",
                "asin": f"I{item[n]}",
                "overall": 5.0,
                "unixReviewTime": int(times[n]),
                "summary": " ".join(summary[n]),
                "reviewText": f"this {NOUNS[item[n] % len(NOUNS)]} is " + " ".join(text[n]),
            }
            file.write(json.dumps(record) + "\n")
    with gzip.open(folder / f"meta_{category}.json.gz", "wt", encoding="utf-8") as file:
        for i in range(items):
            group = f"group {i % groups}"
            record = {
                "asin": f"I{i}",
                "title": f"{WORDS[i % len(WORDS)]} {NOUNS[i % len(NOUNS)]} {group} no. {i}",
                "categories": [[category, group]],
                "description": f"A {WORDS[(i // groups) % len(WORDS)]} {NOUNS[i % len(NOUNS)]}.",
            }
            file.write(repr(record) + "\n")
    return reviews
