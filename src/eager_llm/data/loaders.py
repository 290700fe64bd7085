"""One entry point for every supported dataset: a zoo name or a path.

``name_or_path`` may be
- a name from :func:`model_zoo.datasets.list_datasets` (``"movielens-100k"``, ``"movielens-1m"``);
- RecBole atomic files: a directory, a ``.inter``/``.item`` file or a prefix ``DIR/NAME``;
- Amazon 2014: ``reviews_CATEGORY_5.json.gz`` (``meta_CATEGORY.json.gz`` beside it);
- Amazon 2018: ``CATEGORY.csv[.gz]`` or ``CATEGORY_5.json[.gz]`` (``meta_CATEGORY.json[.gz]``
  beside it);
- a directory holding exactly one of these interaction files.

Review text (:func:`load_reviews`) comes with the Amazon review files only.
"""

from __future__ import annotations

import re
from pathlib import Path

from model_zoo.datasets import dataset_path, list_datasets

from .amazon import load_amazon_2014, load_amazon_2018, read_reviews
from .atomic import load_recbole
from .preprocess import preprocess
from .schema import Interactions, ItemCatalog, Review

_REVIEWS_2014 = re.compile(r"reviews_(.+)_5\.json\.gz")
_RATINGS_2018 = re.compile(r"(?!ratings_)(.+)\.csv(\.gz)?")  # 2014 ratings_*.csv differ
_REVIEWS_2018 = re.compile(r"(?!reviews_)(.+)_5\.json(\.gz)?")


def _interaction_file(folder: Path) -> Path:
    """The single interaction file (``*.inter``, 2014 reviews, 2018 ratings or reviews) in
    ``folder``."""
    found = [
        path
        for path in sorted(folder.iterdir())
        if path.suffix == ".inter"
        or _REVIEWS_2014.fullmatch(path.name)
        or _RATINGS_2018.fullmatch(path.name)
        or _REVIEWS_2018.fullmatch(path.name)
    ]
    if len(found) != 1:
        names = ", ".join(path.name for path in found) or "none"
        raise ValueError(
            f"{folder}: expected one interaction file (*.inter, reviews_*_5.json.gz, *.csv, "
            f"*_5.json.gz), found {names}; pass the file itself"
        )
    return found[0]


def _meta_2018(ratings: Path, category: str) -> Path:
    plain = ratings.with_name(f"meta_{category}.json")
    return plain if plain.is_file() else ratings.with_name(f"meta_{category}.json.gz")


def _dataset_file(name_or_path: str | Path) -> Path:
    """The interaction file (or RecBole prefix) that a path names."""
    path = Path(name_or_path)
    if not (path.exists() or path.with_name(path.name + ".inter").is_file()):
        raise FileNotFoundError(
            f"{name_or_path}: neither a dataset name ({', '.join(list_datasets())}) "
            "nor an existing path"
        )
    return _interaction_file(path) if path.is_dir() else path


def load_raw(name_or_path: str | Path) -> tuple[Interactions, ItemCatalog]:
    """Events (rows in file order) and item text of a dataset, without preprocessing."""
    if isinstance(name_or_path, str) and name_or_path in list_datasets():
        return load_recbole(dataset_path(name_or_path))
    path = _dataset_file(name_or_path)
    if match := _REVIEWS_2014.fullmatch(path.name):
        return load_amazon_2014(path, path.with_name(f"meta_{match[1]}.json.gz"))
    if match := _RATINGS_2018.fullmatch(path.name) or _REVIEWS_2018.fullmatch(path.name):
        return load_amazon_2018(path, _meta_2018(path, match[1]))
    return load_recbole(path)


def review_file(name_or_path: str | Path) -> Path | None:
    """The Amazon review file of a dataset, or None when it has no review text."""
    if isinstance(name_or_path, str) and name_or_path in list_datasets():
        return None
    path = _dataset_file(name_or_path)
    if _REVIEWS_2014.fullmatch(path.name) or _REVIEWS_2018.fullmatch(path.name):
        return path
    return None


def load_reviews(name_or_path: str | Path) -> dict[tuple[str, str], Review] | None:
    """(user id, item id) -> review of a dataset with review text, else None
    (:func:`~eager_llm.data.amazon.read_reviews`)."""
    path = review_file(name_or_path)
    return None if path is None else read_reviews(path)


def load_dataset(
    name_or_path: str | Path, *, k_core: int = 5, skip_invalid: bool = False
) -> tuple[Interactions, ItemCatalog]:
    """Load and preprocess a dataset (see :func:`~eager_llm.data.preprocess.preprocess`)."""
    interactions, catalog = load_raw(name_or_path)
    interactions, catalog, _ = preprocess(
        interactions, catalog, k_core=k_core, skip_invalid=skip_invalid
    )
    return interactions, catalog
