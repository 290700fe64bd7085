"""RecBole atomic files: ``NAME.inter`` (events) and ``NAME.item`` (item text).

Atomic files are tab-separated with a typed header, e.g.
``user_id:token<TAB>item_id:token<TAB>rating:float<TAB>timestamp:float``.
Required columns: ``user_id``, ``item_id``, ``timestamp`` in ``.inter``; ``item_id`` and a title
(``title`` or ``movie_title``) in ``.item``. Optional item text: categories (``categories``,
``class`` or ``genre``) and ``description``. Other columns are ignored. A ``token_seq`` cell
holds space-separated tokens; a ``token`` cell is one value.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .fileio import read_table, to_floats
from .schema import Interactions, ItemCatalog, ItemText

COLUMN_TYPES = ("token", "token_seq", "float", "float_seq")
TITLE_COLUMNS = ("title", "movie_title")
CATEGORY_COLUMNS = ("categories", "class", "genre")
DESCRIPTION_COLUMNS = ("description",)


def atomic_files(path: Path) -> tuple[Path, Path]:
    """The ``(.inter, .item)`` pair named by a directory, a ``.inter``/``.item`` file or a prefix.

    A directory must hold exactly one ``.inter`` file; its ``.item`` file has the same stem.
    """
    if path.is_dir():
        inters = sorted(path.glob("*.inter"))
        if len(inters) != 1:
            raise ValueError(f"{path}: expected one .inter file, found {len(inters)}")
        path = inters[0]
    prefix = path.with_suffix("") if path.suffix in (".inter", ".item") else path
    inter, item = (prefix.with_name(prefix.name + suffix) for suffix in (".inter", ".item"))
    for file in (inter, item):
        if not file.is_file():
            raise FileNotFoundError(f"{file}: no such RecBole atomic file")
    return inter, item


def read_header(path: Path) -> dict[str, str]:
    """Column name -> type, in file order, from the first line of an atomic file."""
    with path.open(encoding="utf-8") as file:
        fields = file.readline().rstrip("\r\n").split("\t")
    columns = {}
    for spec in fields:
        name, _, kind = spec.partition(":")
        if kind not in COLUMN_TYPES:
            raise ValueError(
                f"{path}: unknown column {spec!r}: expected NAME:TYPE, TYPE one of "
                f"{', '.join(COLUMN_TYPES)}"
            )
        columns[name] = kind
    return columns


def _first(columns: dict[str, str], names: tuple[str, ...]) -> str | None:
    """The first of ``names`` that is a column, if any."""
    return next((name for name in names if name in columns), None)


def _require(path: Path, columns: dict[str, str], names: tuple[str, ...]) -> str:
    """The first of ``names`` that is a column, or an error naming the missing column."""
    name = _first(columns, names)
    if name is None:
        raise ValueError(f"{path}: missing required column {' or '.join(map(repr, names))}")
    return name


def read_atomic(
    path: Path, required: tuple[tuple[str, ...], ...]
) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """``(column types, column name -> cell strings)`` of an atomic file.

    ``required`` lists alternatives: one name of each tuple must be a column.
    """
    columns = read_header(path)
    for names in required:
        _require(path, columns, names)
    table = read_table(path, list(columns), first_line=2, sep="\t", quoting=csv.QUOTE_NONE)
    return columns, {name: table[name].to_numpy() for name in columns}


def _tokens(cell: str, kind: str) -> tuple[str, ...]:
    if kind == "token_seq":
        return tuple(cell.split())
    return (cell,) if cell else ()


def read_items(path: Path) -> ItemCatalog:
    """Item text from a ``.item`` file; the first row of a repeated item id wins."""
    columns, cells = read_atomic(path, required=(("item_id",), TITLE_COLUMNS))
    ids = cells["item_id"]
    titles = cells[_require(path, columns, TITLE_COLUMNS)]
    category = _first(columns, CATEGORY_COLUMNS)
    description = _first(columns, DESCRIPTION_COLUMNS)
    items: dict[str, ItemText] = {}
    for row, item_id in enumerate(ids):
        if item_id not in items:
            items[item_id] = ItemText(
                title=titles[row],
                categories=_tokens(cells[category][row], columns[category]) if category else (),
                description=cells[description][row] if description else "",
            )
    return ItemCatalog(items)


def read_inter(path: Path) -> Interactions:
    """Events from a ``.inter`` file, rows in file order."""
    _, cells = read_atomic(path, required=(("user_id",), ("item_id",), ("timestamp",)))
    times = to_floats(cells["timestamp"], path, "timestamp", first_line=2)
    return Interactions.from_ids(cells["user_id"], cells["item_id"], times)


def load_recbole(path: str | Path) -> tuple[Interactions, ItemCatalog]:
    """Events and item text of a RecBole dataset (see :func:`atomic_files` for ``path``)."""
    inter, item = atomic_files(Path(path))
    return read_inter(inter), read_items(item)
