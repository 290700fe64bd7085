"""Amazon review datasets (McAuley et al.), 2014 and 2018 releases.

2014: ``reviews_CATEGORY_5.json.gz`` holds one JSON review per line (``reviewerID``, ``asin``,
``unixReviewTime``; optional review text ``summary`` and ``reviewText``);
``meta_CATEGORY.json.gz`` holds one *Python literal* dict per line (``asin``, ``title``,
``categories`` as a list of category paths, ``description``), parsed with ``ast.literal_eval``.

2018: ``CATEGORY.csv`` holds ``item,user,rating,timestamp`` rows without a header, or
``CATEGORY_5.json.gz`` holds reviews in the 2014 review format; ``meta_CATEGORY.json.gz``
holds one JSON object per line (``asin``, ``title``, ``category`` as a list, ``description``
as a list of paragraphs).

Only metadata of items that occur in the events is kept. Review text (:func:`read_reviews`)
exists only in the review files, not in the 2018 ratings CSV.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .fileio import field, float_field, numbered_lines, parse_record, read_table, records, to_floats
from .schema import Interactions, ItemCatalog, ItemText, Review

# Finds the asin of a metadata line without parsing it, to skip items that have no events.
_ASIN = re.compile(r"""["']asin["']\s*:\s*["']([^"']*)["']""")


def _text(value: Any) -> str:
    """A metadata text field (a string or a list of strings) as one string."""
    if isinstance(value, list):
        return " ".join(str(part) for part in value)
    return "" if value is None else str(value)


def _unique(values: list[Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(value) for value in values))


def _item_2014(record: dict[str, Any]) -> ItemText:
    paths = record.get("categories") or []
    return ItemText(
        title=_text(record.get("title")),
        categories=_unique([name for path in paths for name in path]),
        description=_text(record.get("description")),
    )


def _item_2018(record: dict[str, Any]) -> ItemText:
    return ItemText(
        title=_text(record.get("title")),
        categories=_unique(record.get("category") or []),
        description=_text(record.get("description")),
    )


def read_meta(
    path: Path,
    parse: Callable[[str], Any],
    item: Callable[[dict[str, Any]], ItemText],
    wanted: set[str],
) -> ItemCatalog:
    """Catalog of the ``wanted`` asins in a metadata file; the first line of an asin wins."""
    items: dict[str, ItemText] = {}
    for line, text in numbered_lines(path):
        match = _ASIN.search(text)
        if match and match.group(1) not in wanted:
            continue
        record = parse_record(text, parse, path, line)
        asin = str(field(record, "asin", path, line))
        if asin in wanted and asin not in items:
            items[asin] = item(record)
    return ItemCatalog(items)


def read_review_events(reviews: Path) -> Interactions:
    """The events of a review file (2014, or the 2018 ``CATEGORY_5.json.gz``)."""
    users, items, times = [], [], []
    for line, record in records(reviews, json.loads):
        users.append(str(field(record, "reviewerID", reviews, line)))
        items.append(str(field(record, "asin", reviews, line)))
        times.append(float_field(record, "unixReviewTime", reviews, line))
    return Interactions.from_ids(users, items, times)


def read_reviews(reviews: Path) -> dict[tuple[str, str], Review]:
    """(user id, item id) -> the user's review of the item (``summary``, ``reviewText``;
    missing ones read as ""); of a repeated pair, the earliest review (ties: the first line)."""
    found: dict[tuple[str, str], tuple[float, Review]] = {}
    for line, record in records(reviews, json.loads):
        pair = (
            str(field(record, "reviewerID", reviews, line)),
            str(field(record, "asin", reviews, line)),
        )
        time = float_field(record, "unixReviewTime", reviews, line)
        if pair not in found or time < found[pair][0]:
            text = Review(_text(record.get("summary")), _text(record.get("reviewText")))
            found[pair] = (time, text)
    return {pair: review for pair, (_, review) in found.items()}


def load_amazon_2014(reviews: Path, meta: Path) -> tuple[Interactions, ItemCatalog]:
    """Events of a 2014 5-core review file and the text of their items."""
    interactions = read_review_events(reviews)
    return interactions, read_meta(meta, ast.literal_eval, _item_2014, set(interactions.item_ids))


def load_amazon_2018(ratings: Path, meta: Path) -> tuple[Interactions, ItemCatalog]:
    """Events of a 2018 ratings CSV or 5-core review file and the text of their items."""
    if ratings.name.endswith((".json", ".json.gz")):
        interactions = read_review_events(ratings)
    else:
        table = read_table(ratings, ["item", "user", "rating", "timestamp"], first_line=1)
        times = to_floats(table["timestamp"].to_numpy(), ratings, "timestamp", first_line=1)
        users, items = table["user"].to_numpy(), table["item"].to_numpy()
        interactions = Interactions.from_ids(users, items, times)
    return interactions, read_meta(meta, json.loads, _item_2018, set(interactions.item_ids))
