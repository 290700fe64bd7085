"""The canonical Observe-R1 row, read from JSONL with line-precise errors.

One JSON object per line::

    {"id": "count-17", "image": "images/count-17.png", "question": "How many ...?", "answer": "7"}
    {"id": "count-18", "image": "images/count-18.png", "question": "How many ...?",
     "choices": ["5", "6", "7", "8"], "answer": "C"}

``image`` is a path, relative to the JSONL file's folder or absolute; a row with several
images lists them in ``images`` (0 to `MAX_IMAGES` paths, asked in that order), a text-only
row has neither field (or ``"images": []``); both fields at once are an error.
`row_images` gives a row's image paths. ``answer`` is a string (numbers are accepted and
converted). A multiple-choice row lists its 2 to 6 options
in ``choices`` and keeps ``question`` bare: consumers letter the options A-F when they ask
(`observe_r1.evaluation.evaluate.question_and_gold`); its ``answer`` is the gold letter or the text
of one option. Any other field (family, level, difficulty, ...) is carried along untouched.

Bounds (a row over one is an error naming ``file:line`` and the field, or is skipped and
counted with ``skip_invalid``): a line holds at most `MAX_LINE_BYTES` bytes of UTF-8 JSON;
``question`` (and ``caption``, ``rationale``) at most `MAX_QUESTION_CHARS` characters;
``answer`` and each choice at most `MAX_ANSWER_CHARS`; numbers are finite and values nest at
most `MAX_DEPTH` deep; a row lists at most `MAX_IMAGES` images; an image has at most
`MAX_IMAGE_PIXELS` pixels and a side ratio of at most `MAX_ASPECT_RATIO`, and is decoded
once, in full (JPEGs at 1/8 scale), when the row is read, so a truncated or corrupt file is
found before any work starts.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from model_zoo.outputs import writable_problem

REQUIRED = ("question", "answer")  # the image is optional: `row_images`
TEXT_FIELDS = ("caption", "rationale")  # optional; strings when present
LETTERS = "ABCDEF"

MAX_LINE_BYTES = 1 << 20  # one JSONL line: 1 MiB
MAX_QUESTION_CHARS = 4000  # question, caption, rationale
MAX_ANSWER_CHARS = 1000  # gold answer, each choice
MAX_IMAGE_PIXELS = 4096 * 4096  # about 16.8 megapixels
MAX_ASPECT_RATIO = 200  # longer side / shorter side
MAX_IMAGES = 16  # paths in one row's ``images``
MAX_DEPTH = 64  # nesting of a field's value (lists, objects)
# PIL's own decompression-bomb guard, for every image this process opens: a warning above the
# limit, an error above twice it (PIL's default, 89 megapixels, let a 12000 x 12000 image in).
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
GZIP_MAGIC = b"\x1f\x8b"


class InputError(ValueError):
    """Unusable input (a row, a file, an option); the message is ``where: what``. The CLIs
    print it as one ``error:`` line and exit with status 2."""


class RowError(InputError):
    """A row is unusable; the message is ``file:line: reason`` (or ``where: reason``)."""


@dataclass
class LoadedRows:
    rows: list[dict[str, Any]]
    skipped: int
    reasons: list[str]


def _kind(value: Any) -> str:
    """The JSON name of `value`'s type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list | tuple) else "an object"


def _check_length(field: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise ValueError(f"field '{field}': {len(text):,} characters, over the limit of {limit:,}")


def _check_values(record: dict[str, Any]) -> None:
    """Every number in `record` (nested too) is finite: JSON has no NaN or Infinity, and
    Python's reader accepts them (and 1e999) anyway; every string is encodable text (JSON's
    ``\\ud800`` escapes are not); no value nests deeper than `MAX_DEPTH` (deeper ones would
    break writing the row back)."""
    for key, value in record.items():
        stack = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"field '{key}': {item} is not a finite number")
            if isinstance(item, str) and not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError as error:  # "\ud800": valid JSON, not text
                    code = f"U+{ord(item[error.start]):04X}"
                    raise ValueError(f"field '{key}': holds a lone surrogate {code}") from None
            if isinstance(item, dict | list) and depth > MAX_DEPTH:
                raise ValueError(f"field '{key}': nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                stack.extend((inner, depth + 1) for inner in item.values())
            elif isinstance(item, list):
                stack.extend((inner, depth + 1) for inner in item)


def _check_choices(choices: Any, answer: str) -> None:
    if not isinstance(choices, list) or not 2 <= len(choices) <= len(LETTERS):
        raise ValueError(f"field 'choices' must be a list of 2 to {len(LETTERS)} options")
    if not all(isinstance(c, str | int | float) and not isinstance(c, bool) for c in choices):
        raise ValueError("field 'choices' must hold strings or numbers")
    for choice in choices:
        _check_length("choices", str(choice), MAX_ANSWER_CHARS)
    texts = [str(choice) for choice in choices]
    repeated = next((text for text in texts if texts.count(text) > 1), None)
    if repeated is not None:
        raise ValueError(f"field 'choices' lists {repeated!r} twice")
    if answer not in LETTERS[: len(choices)] and answer not in map(str, choices):
        last = LETTERS[len(choices) - 1]
        raise ValueError(f"answer {answer!r} is neither a letter A-{last} nor one of the choices")


def check_image(image: Path | str, field: str = "image") -> None:
    """Raise ValueError ``field 'image': ...`` unless `image` is a readable image file within
    `MAX_IMAGE_PIXELS` and `MAX_ASPECT_RATIO`, its pixels finite (float images: no NaN or
    infinity). The whole file is decoded (JPEGs at 1/8 scale: every byte is still read), so
    a truncated or corrupt file fails here, not mid-run."""
    if os.path.exists(image) and not os.path.isfile(image):  # a folder, a device, a pipe
        kind = "a folder" if os.path.isdir(image) else "not a regular file"
        raise ValueError(f"field '{field}': {image} is {kind}, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below
            with Image.open(image) as handle:
                check_image_size(handle, image, field)
                handle.draft("RGB", (1, 1))  # JPEG only: the smallest DCT scale
                handle.load()
                finite = handle.mode != "F" or np.isfinite(np.asarray(handle)).all()
    except FileNotFoundError:
        raise ValueError(f"field '{field}': no such file {image}") from None
    except Image.DecompressionBombError as error:  # over twice the limit: refused by PIL's open
        pixels = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(pixels[1]):,} pixels" if pixels else "too many pixels"
        raise ValueError(_too_large(image, field, size)) from None
    except ImageOutOfBounds:
        raise
    except Exception as error:  # noqa: BLE001 -- any decoder failure makes the image unusable
        raise ValueError(f"field '{field}': unreadable image {image} ({error})") from None
    if not finite:
        raise ValueError(f"field '{field}': {image} has NaN or infinite pixel values")


class ImageOutOfBounds(ValueError):
    """An image over `MAX_IMAGE_PIXELS` pixels or `MAX_ASPECT_RATIO`."""


def _too_large(image: Path | str, field: str, size: str) -> str:
    limit = f"over the limit of {MAX_IMAGE_PIXELS:,} pixels"
    return f"field '{field}': {image} has {size}, {limit}; downscale it"


def check_image_size(handle: Image.Image, image: Path | str, field: str = "image") -> None:
    """Raise `ImageOutOfBounds` for an opened (not yet decoded) image over `MAX_IMAGE_PIXELS`,
    or for one more elongated than `MAX_ASPECT_RATIO` (Qwen2-VL's processors
    refuse those, which would stop a run at that image's batch)."""
    width, height = handle.size
    if width * height > MAX_IMAGE_PIXELS:
        size = f"{width} x {height} = {width * height:,} pixels"
        raise ImageOutOfBounds(_too_large(image, field, size))
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageOutOfBounds(
            f"field '{field}': {image} is {width} x {height}, more elongated than "
            f"{MAX_ASPECT_RATIO}:1; pad or crop it"
        )


def _check_row(row: Any, base: Path) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise ValueError(f"a row must be a JSON object, not {_kind(row)}")
    for key in REQUIRED:
        value = row.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError(f"missing field '{key}'")
    _check_values(row)
    if not isinstance(row["question"], str):
        raise ValueError(f"field 'question' must be a string, not {_kind(row['question'])}")
    _check_length("question", row["question"], MAX_QUESTION_CHARS)
    for key in TEXT_FIELDS:
        if row.get(key) is not None:
            if not isinstance(row[key], str):
                raise ValueError(f"field '{key}' must be a string, not {_kind(row[key])}")
            _check_length(key, row[key], MAX_QUESTION_CHARS)
    if row.get("id") is not None and (
        not isinstance(row["id"], str | int) or isinstance(row["id"], bool)
    ):
        raise ValueError(f"field 'id' must be a string or an integer, not {_kind(row['id'])}")
    if not isinstance(row["answer"], str | int | float) or isinstance(row["answer"], bool):
        raise ValueError(f"field 'answer' must be a string or a number, not {_kind(row['answer'])}")
    answer = str(row["answer"])
    _check_length("answer", answer, MAX_ANSWER_CHARS)
    if "choices" in row:
        _check_choices(row["choices"], answer)
    if "image" in row and "images" in row:
        raise ValueError(
            "fields 'image' and 'images' both given: use 'image' for one image or 'images' "
            "for a list"
        )
    checked = {**row, "answer": answer}
    if "image" in row:
        checked["image"] = _checked_image(row["image"], "image", base)
    elif "images" in row:
        images = row["images"]
        if not isinstance(images, list):
            raise ValueError(f"field 'images' must be a list of paths, not {_kind(images)}")
        if len(images) > MAX_IMAGES:
            raise ValueError(
                f"field 'images': {len(images)} images, over the limit of {MAX_IMAGES}"
            )
        checked["images"] = [
            _checked_image(image, f"images[{i}]", base) for i, image in enumerate(images)
        ]
    return checked


def _checked_image(value: Any, field: str, base: Path) -> str:
    """The absolute path of one image field's value, checked by `check_image`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        empty = "null" if value is None else "empty"
        raise ValueError(
            f"field '{field}' is {empty}: give a path, or leave the field out for a row "
            "without an image"
        )
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"field '{field}' must be a path (a string), not {_kind(value)}")
    if "\0" in str(value):
        raise ValueError(f"field '{field}': the path holds a NUL character")
    image = Path(value)
    image = image if image.is_absolute() else base / image
    check_image(image, field)
    return str(image)


def row_images(row: dict[str, Any]) -> list[str]:
    """The image paths of a row, in order: ``[image]``, ``images``, or ``[]`` (text only)."""
    if row.get("image") is not None:
        return [row["image"]]
    return list(row.get("images") or [])


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
        except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
            reason = "nested too deeply" if isinstance(error, RecursionError) else error
            if not skip_invalid:
                raise RowError(f"{where}: {reason}") from None
            reasons.append(f"{where}: {reason}")
    return LoadedRows(rows, len(reasons), reasons)


def _file_lines(path: Path, handle) -> Iterator[tuple[str, bytes | ValueError]]:
    """``(file:line, raw bytes)`` of each non-blank line, or a ValueError for a line over
    `MAX_LINE_BYTES` (skipped without reading it into memory)."""
    number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            size = len(raw)
            while raw and not raw.endswith(b"\n"):
                raw = handle.readline(MAX_LINE_BYTES + 1)
                size += len(raw)
            limit = f"over the limit of {MAX_LINE_BYTES:,} bytes"
            yield f"{path}:{number}", ValueError(f"line of {size:,} bytes, {limit}")
        elif raw.strip():
            yield f"{path}:{number}", raw


def parse_line(raw: bytes | ValueError, first: bool = False) -> Any:
    """One JSONL line as JSON: raises ValueError saying what is wrong (not UTF-8, not JSON,
    too long, nested too deeply)."""
    if isinstance(raw, ValueError):
        raise raw
    try:
        text = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as error:
        byte = raw[error.start]
        raise ValueError(
            f"not UTF-8 text (byte 0x{byte:02x} at column {error.start + 1})"
        ) from None
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def read_rows(
    path: str | Path,
    *,
    skip_invalid: bool = False,
    convert: Callable[[Any], Any] | None = None,
) -> LoadedRows:
    """Validated rows of a JSONL file; errors name ``file:line`` (see `collect_rows`).

    ``convert`` turns each parsed line into a canonical row first (an importer's reader)."""
    path = Path(path)
    if not path.is_file():  # a FIFO or device too: refused before it is opened
        what = "is a folder, not a JSONL file" if path.is_dir() else "no such file"
        if path.exists() and not path.is_dir():
            what = "is not a regular file (a FIFO, socket or device): give a file"
        raise RowError(f"{path}: {what}")
    convert = convert or (lambda record: record)
    first = f"{path}:1"

    def parse(item: tuple[str, bytes | ValueError]) -> Any:
        where, raw = item
        return convert(parse_line(raw, first=where == first))

    try:
        with path.open("rb") as handle:
            if handle.read(2) == GZIP_MAGIC:
                raise RowError(f"{path}: a gzip-compressed file; decompress it first (gunzip)")
            handle.seek(0)
            lines = ((where, (where, raw)) for where, raw in _file_lines(path, handle))
            loaded = collect_rows(lines, parse, path.parent, skip_invalid=skip_invalid)
    except OSError as error:  # unreadable file: permissions, I/O error
        raise RowError(f"{path}: {error.strerror or error}") from None
    if not loaded.rows:
        raise RowError(f"{path}: no usable rows")
    return loaded


def write_rows(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Write canonical rows as JSONL; images (``image``, ``images``) inside the file's folder
    become relative paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.parent.resolve()
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            paths = {}
            if row.get("image") is not None:
                paths["image"] = _relative(row["image"], folder)
            if row.get("images") is not None:
                paths["images"] = [_relative(image, folder) for image in row["images"]]
            handle.write(json.dumps({**row, **paths}, ensure_ascii=False) + "\n")
    return path


def _relative(image: str | Path, folder: Path) -> str:
    """``image`` relative to ``folder`` when inside it, else absolute."""
    image = Path(image).resolve()
    return os.path.relpath(image, folder) if image.is_relative_to(folder) else str(image)


def check_writable(path: str | Path, what: str, *, folder: bool = False) -> None:
    """Raise `InputError` ``what PATH: ...`` unless `path` can be written: an existing path
    must be a folder (`folder`) or a file, and the folder that would hold it writable (or
    creatable under a writable one). Checked before any work, so a long run never ends in an
    unwritable output; nothing is created."""
    if problem := writable_problem(Path(path), folder=folder):
        raise InputError(f"{what} {path}: {problem}")
