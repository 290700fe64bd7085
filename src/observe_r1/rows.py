"""The canonical Observe-R1 row, read from JSONL with line-precise errors.

One JSON object per line::

    {"id": "count-17", "image": "images/count-17.png", "question": "How many ...?",
     "answer": "7", "choices": ["5", "6", "7", "8"]}    # choices optional

``image`` is a path, relative to the JSONL file's folder or absolute; ``answer`` is a
string (numbers are accepted and converted). Any other field (family, level,
difficulty, ...) is carried along untouched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

REQUIRED = ("question", "answer", "image")


class RowError(ValueError):
    """A JSONL row is unusable; the message is ``file:line: reason``."""


@dataclass
class LoadedRows:
    rows: list[dict[str, Any]]
    skipped: int
    reasons: list[str]


def _check_row(row: Any, base: Path) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise ValueError("a row must be a JSON object")
    for key in REQUIRED:
        value = row.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError(f"missing field '{key}'")
    if not isinstance(row["answer"], str | int | float) or isinstance(row["answer"], bool):
        raise ValueError("field 'answer' must be a string or a number")
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


def read_rows(path: str | Path, *, skip_invalid: bool = False) -> LoadedRows:
    """Validated rows of a JSONL file. Raises :class:`RowError` at the first bad line,
    or, with ``skip_invalid``, skips bad lines and reports how many and why."""
    path = Path(path)
    if not path.is_file():
        raise RowError(f"{path}: no such file")
    rows, reasons = [], []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(_check_row(json.loads(line), path.parent))
            except ValueError as error:  # JSONDecodeError is a ValueError
                reason = f"{path}:{number}: {error}"
                if not skip_invalid:
                    raise RowError(reason) from None
                reasons.append(reason)
    if not rows:
        raise RowError(f"{path}: no usable rows")
    return LoadedRows(rows, len(reasons), reasons)
