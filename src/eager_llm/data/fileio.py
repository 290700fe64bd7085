"""Small readers shared by the loaders; every parse error names ``file:line``."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd


def open_text(path: Path) -> IO[str]:
    """Open a UTF-8 text file, gunzipping it when the name ends in ``.gz``."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for each non-blank line, numbered from 1."""
    with open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield number, line


def parse_record(text: str, parse: Callable[[str], Any], path: Path, line: int) -> dict[str, Any]:
    """Parse one line into a dict with ``parse`` (``json.loads`` or ``ast.literal_eval``)."""
    try:
        record = parse(text)
    except (ValueError, SyntaxError) as error:
        reason = getattr(error, "msg", None) or str(error)
        raise ValueError(f"{path}:{line}: malformed record: {reason}") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}:{line}: expected an object, got {type(record).__name__}")
    return record


def records(path: Path, parse: Callable[[str], Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` for each non-blank line of a JSON-lines style file."""
    for line, text in numbered_lines(path):
        yield line, parse_record(text, parse, path, line)


def field(record: dict[str, Any], key: str, path: Path, line: int) -> Any:
    """``record[key]``, or a ``file:line`` error naming the missing key."""
    if key not in record:
        raise ValueError(f"{path}:{line}: missing key {key!r}")
    return record[key]


def float_field(record: dict[str, Any], key: str, path: Path, line: int) -> float:
    """``record[key]`` as a float, or a ``file:line`` error."""
    value = field(record, key, path, line)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{path}:{line}: {key!r}: not a number: {value!r}") from None


def read_table(path: Path, names: list[str], first_line: int, **options: Any) -> pd.DataFrame:
    """Cells of a delimited file as strings, data starting on ``first_line``.

    Rows must have ``len(names)`` fields (missing trailing fields read as ``""``). Extra
    ``pandas.read_csv`` options (``sep``, ``quoting``) pass through.
    """
    try:
        table = pd.read_csv(
            path,
            header=None,
            skiprows=first_line - 1,
            dtype=object,
            na_filter=False,
            encoding="utf-8",
            **options,
        )
    except ValueError as error:  # pandas.errors.ParserError is a ValueError
        raise ValueError(f"{path}: {str(error).strip()}") from None
    if table.shape[1] != len(names):
        raise ValueError(
            f"{path}:{first_line}: expected {len(names)} fields, found {table.shape[1]}"
        )
    table.columns = names
    return table


def to_floats(values: np.ndarray, path: Path, column: str, first_line: int) -> np.ndarray:
    """Convert strings to float64; ``values[0]`` is on line ``first_line`` of ``path``."""
    try:
        return values.astype(np.float64)
    except (TypeError, ValueError):
        for offset, value in enumerate(values):
            try:
                float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{path}:{first_line + offset}: column {column!r}: not a number: {value!r}"
                ) from None
        raise
