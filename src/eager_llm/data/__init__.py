"""Datasets for EAGER-LLM: loading, preprocessing, leave-one-out split and statistics.

Modules: ``schema`` (data classes), ``fileio`` (line/table readers with ``file:line`` errors),
``atomic`` (RecBole atomic files), ``amazon`` (Amazon 2014/2018), ``loaders`` (name or path
-> dataset), ``preprocess`` (EAGER-LLM filtering), ``split`` (leave-one-out), ``stats``.
"""

from .loaders import load_dataset, load_raw, load_reviews, review_file
from .preprocess import preprocess
from .schema import (
    TIE_ORDERS,
    Interactions,
    ItemCatalog,
    ItemText,
    Review,
    check_tie_order,
    reviews_by_user,
)
from .split import Example, LeaveOneOut, leave_one_out
from .stats import dataset_stats, interaction_stats

__all__ = [
    "TIE_ORDERS",
    "Example",
    "Interactions",
    "ItemCatalog",
    "ItemText",
    "LeaveOneOut",
    "Review",
    "check_tie_order",
    "dataset_stats",
    "interaction_stats",
    "leave_one_out",
    "load_dataset",
    "load_raw",
    "load_reviews",
    "review_file",
    "reviews_by_user",
    "preprocess",
]
