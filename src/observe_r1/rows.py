"""The canonical Observe-R1 row, read from JSONL with line-precise errors.

One JSON object per line::

    {"id": "count-17", "image": "images/count-17.png", "question": "How many ...?", "answer": "7"}
    {"id": "count-18", "image": "images/count-18.png", "question": "How many ...?",
     "choices": ["5", "6", "7", "8"], "answer": "C"}

``image`` is a path, relative to the JSONL file's folder or absolute; ``answer`` is a
string (numbers are accepted and converted). A multiple-choice row lists its 2 to 6 options
in ``choices`` and keeps ``question`` bare: consumers letter the options A-F when they ask
(`observe_r1.evaluate.question_and_gold`); its ``answer`` is the gold letter or the text of
one option. Any other field (family, level, difficulty, ...) is carried along untouched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

REQUIRED = ("question", "answer", "image")
LETTERS = "ABCDEF"


class RowError(ValueError):
    """A row is unusable; the message is ``file:line: reason`` (or ``where: reason``)."""


@dataclass
class LoadedRows:
    rows: list[dict[str, Any]]
    skipped: int
    reasons: list[str]


def _check_choices(choices: Any, answer: str) -> None:
    if not isinstance(choices, list) or not 2 <= len(choices) <= len(LETTERS):
        raise ValueError(f"field 'choices' must be a list of 2 to {len(LETTERS)} options")
    if not all(isinstance(choice, str | int | float) for choice in choices):
        raise ValueError("field 'choices' must hold strings or numbers")
    if answer not in LETTERS[: len(choices)] and answer not in map(str, choices):
        last = LETTERS[len(choices) - 1]
        raise ValueError(f"answer {answer!r} is neither a letter A-{last} nor one of the choices")


def _check_row(row: Any, base: Path) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise ValueError("a row must be a JSON object")
    for key in REQUIRED:
        value = row.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError(f"missing field '{key}'")
    if not isinstance(row["answer"], str | int | float) or isinstance(row["answer"], bool):
        raise ValueError("field 'answer' must be a string or a number")
    if "choices" in row:
        _check_choices(row["choices"], str(row["answer"]))
    image = Path(row["image"])
    image = image if image.is_absolute() else base / image
    try:
        with Image.open(image) as handle:
            handle.size  # noqa: B018 -- reads the header: the file is a real image
    except FileNotFoundError:
        raise ValueError(f"field 'image': no such file {image}") from None
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"field 'image': unreadable image {image} ({error})") from None
    return {**row, "answer": str(row["answer"]), "image": str(image)}


def collect_rows(
    items: Iterable[tuple[str, Any]],
    parse: Callable[[Any], Any],
    base: Path,
    *,
    skip_invalid: bool = False,
) -> LoadedRows:
    """Validated rows from ``(where, item)`` pairs: ``parse(item)`` makes the row, relative
    image paths are taken from `base`. Raises :class:`RowError` ``where: reason`` at the
    first bad item, or, with ``skip_invalid``, skips bad items and reports how many and why."""
    rows, reasons = [], []
    for where, item in items:
        try:
            rows.append(_check_row(parse(item), base))
        except ValueError as error:  # JSONDecodeError is a ValueError
            if not skip_invalid:
                raise RowError(f"{where}: {error}") from None
            reasons.append(f"{where}: {error}")
    return LoadedRows(rows, len(reasons), reasons)


def read_rows(
    path: str | Path,
    *,
    skip_invalid: bool = False,
    convert: Callable[[Any], Any] | None = None,
) -> LoadedRows:
    """Validated rows of a JSONL file; errors name ``file:line`` (see `collect_rows`).

    ``convert`` turns each parsed line into a canonical row first (an importer's reader)."""
    path = Path(path)
    if not path.is_file():
        raise RowError(f"{path}: no such file")
    convert = convert or (lambda record: record)
    with path.open(encoding="utf-8") as handle:
        lines = ((f"{path}:{n}", line) for n, line in enumerate(handle, start=1) if line.strip())
        loaded = collect_rows(
            lines, lambda line: convert(json.loads(line)), path.parent, skip_invalid=skip_invalid
        )
    if not loaded.rows:
        raise RowError(f"{path}: no usable rows")
    return loaded


def write_rows(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Write canonical rows as JSONL; images inside the file's folder become relative paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.parent.resolve()
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            image = Path(row["image"]).resolve()
            inside = image.is_relative_to(folder)
            image_field = os.path.relpath(image, folder) if inside else str(image)
            handle.write(json.dumps({**row, "image": image_field}, ensure_ascii=False) + "\n")
    return path
