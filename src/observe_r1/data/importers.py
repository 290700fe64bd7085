"""Canonical rows (`observe_r1.data.rows`) from other formats: ``observe-r1 import``.

- ``official``: the public Observe-R1 / LMM-R1 JSONL, ``{"message": ..., "answer": ...}``
  where ``message`` is a chat list (a real list, or one stringified as JSON or as a Python
  literal) whose user turns hold ``{"type": "image", "image": "file:///..."}`` parts (one:
  the row's ``image``; several: ``images`` in order; none: a text-only row) and the question
  text. Images stay where they are (absolute paths; relative ones are taken
  from the JSONL's folder). `official_record` converts back, for the public trainer.
- ``hf``: a Hugging Face dataset folder (``save_to_disk``) with image, question and answer
  columns (names configurable) and optionally a choices column; images are written to
  ``OUT/images``. An image cell that holds a list gives ``images``, an empty cell (None) a
  text-only row.
- ``easy-vqa``: the data shipped in the ``easy-vqa`` wheel (64 x 64 shapes). Its answers are
  words (yes/no, a colour, a shape), so every question becomes multiple choice (yes/no; the
  three shapes; the gold colour and three others) with the gold letter as answer and the
  word kept as ``answer_text``: verifiable by the ladder's default rule.

Each writes ``OUT/rows.jsonl`` and returns the loaded rows; bad input raises `RowError` naming
``file:line`` (``file[index]`` for dataset rows and JSON lists), or is skipped and counted
with ``skip_invalid``.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from PIL import Image

from observe_r1.data.rows import (
    LETTERS,
    ImageOutOfBounds,
    LoadedRows,
    RowError,
    check_image_size,
    check_writable,
    collect_rows,
    read_rows,
    row_images,
    write_rows,
)

FILE_PREFIX = "file://"


def parse_message(message: Any) -> list[dict[str, Any]]:
    """The chat list of an official row: a list as is, a string read as JSON, else as a
    Python literal (single quotes, ``None``...)."""
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except RecursionError:
            raise ValueError("field 'message': nested too deeply") from None
        except ValueError:
            try:
                message = ast.literal_eval(message)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                raise ValueError("field 'message' is neither JSON nor a Python literal") from None
    if isinstance(message, dict):
        message = [message]
    if not isinstance(message, list) or not all(isinstance(m, dict) for m in message):
        raise ValueError("field 'message' must be a list of chat messages")
    return message


def official_row(record: Any) -> dict[str, Any]:
    """A canonical row from one official record (validation of the result is the caller's)."""
    if not isinstance(record, dict) or "message" not in record:
        raise ValueError("missing field 'message'")
    images, texts = [], []
    for number, turn in enumerate(parse_message(record["message"]), start=1):
        if turn.get("role", "user") != "user":
            continue  # a system prompt is the trainer's business, not the row's
        where = f"field 'message': message {number}"
        content = turn.get("content", [])
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(parts, list) or not all(isinstance(part, dict) for part in parts):
            raise ValueError(f"{where}: 'content' must be a string or a list of parts (objects)")
        for part in parts:
            kind = part.get("type")
            if kind not in ("image", "text"):
                continue
            value = part.get(kind, "")
            if not isinstance(value, str):
                raise ValueError(f"{where}: the {kind} part's '{kind}' must be a string")
            (images if kind == "image" else texts).append(value)
    paths = [image.removeprefix(FILE_PREFIX) for image in images]
    extra = {k: v for k, v in record.items() if k not in ("message", "image", "images")}
    # one image: ``image`` (as before); several: ``images`` in message order; none: text only
    field = {"image": paths[0]} if len(paths) == 1 else {"images": paths} if paths else {}
    return {**extra, **field, "question": "\n".join(texts).strip()}


def official_record(row: dict[str, Any]) -> dict[str, Any]:
    """The official JSONL record of a canonical row (``message`` stringified as JSON)."""
    content = [
        {"type": "image", "image": FILE_PREFIX + str(Path(image).resolve())}
        for image in row_images(row)
    ]
    content.append({"type": "text", "text": row["question"]})
    message = json.dumps([{"role": "user", "content": content}], ensure_ascii=False)
    extra = {k: v for k, v in row.items() if k not in ("image", "images", "question")}
    return {"message": message, **extra}


def _written(loaded: LoadedRows, out: Path, source: Path) -> LoadedRows:
    if not loaded.rows:
        raise RowError(f"{source}: no usable rows")
    write_rows(out / "rows.jsonl", loaded.rows)
    return loaded


def check_outputs(out: Path, *, images: bool) -> None:
    """Raise `InputError` unless ``out/rows.jsonl`` (and ``out/images/``) can be written."""
    check_writable(out, "--out", folder=True)
    check_writable(out / "rows.jsonl", "--out's rows.jsonl")
    if images:
        check_writable(out / "images", "--out's images", folder=True)


@contextmanager
def _removed_on_error(folder: Path) -> Iterator[list[Path]]:
    """Yield a list to note the files written into `folder`; if the import fails they are
    deleted again (and `folder` too if it was created for them), so a failed import leaves
    nothing behind."""
    created = [parent for parent in (folder, *folder.parents) if not parent.exists()]
    written: list[Path] = []
    try:
        yield written
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        for parent in created:  # innermost first
            with suppress(OSError):
                parent.rmdir()
        raise


def import_official(source: Path, out: Path, *, skip_invalid: bool = False) -> LoadedRows:
    """Official JSONL -> ``out/rows.jsonl``; rows without an ``id`` get ``official-<n>``."""
    check_outputs(out, images=False)
    loaded = read_rows(source, skip_invalid=skip_invalid, convert=official_row)
    loaded.rows = [{"id": f"official-{i}", **row} for i, row in enumerate(loaded.rows)]
    return _written(loaded, out, source)


def _image(value: Any, field: str = "image") -> Image.Image | str:
    """A dataset cell (or one item of a list cell) as a PIL image (decoded, or raw bytes) or a
    path string."""
    if isinstance(value, Image.Image | str):
        return value
    if isinstance(value, dict) and value.get("bytes"):
        try:
            return Image.open(io.BytesIO(value["bytes"]))
        except Exception as error:  # noqa: BLE001 -- any decoder failure: unusable
            raise ValueError(f"field '{field}': unreadable image bytes ({error})") from None
    if isinstance(value, dict) and value.get("path"):
        return value["path"]
    raise ValueError(f"field '{field}': the image column holds neither an image nor a path")


def _save_rgb(image: Image.Image, path: Path) -> None:
    """Save a dataset's image as an RGB PNG, refusing it over `MAX_IMAGE_PIXELS` before
    decoding it (a decoder failure is a ValueError naming the field)."""
    try:
        check_image_size(image, f"hf image {path.name}")
        image.convert("RGB").save(path)
    except ImageOutOfBounds:
        raise
    except Exception as error:  # noqa: BLE001 -- truncated data, bad modes...
        path.unlink(missing_ok=True)
        raise ValueError(f"field 'image': unreadable image ({error})") from None


def _choice_answer(answer: Any, choices: list[str]) -> Any:
    """The gold letter of a choice question whose answer is an option's text, its index
    (an integer) or a letter."""
    if str(answer) in choices:
        return LETTERS[choices.index(str(answer))]
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(choices):
        return LETTERS[answer]
    return answer  # a letter already, or invalid: the row check says which


def import_hf(
    source: Path,
    out: Path,
    *,
    split: str | None = None,
    image_column: str = "image",
    question_column: str = "question",
    answer_column: str = "answer",
    choices_column: str | None = None,
    limit: int | None = None,
    skip_invalid: bool = False,
) -> LoadedRows:
    """A ``save_to_disk`` dataset folder -> ``out/rows.jsonl`` + ``out/images/hf-<n>.png``."""
    from datasets import DatasetDict, load_from_disk

    check_outputs(out, images=True)
    try:
        dataset = load_from_disk(str(source))
    except (OSError, ValueError) as error:  # FileNotFoundError: no dataset files there
        raise RowError(f"{source}: not a saved Hugging Face dataset ({error})") from None
    if isinstance(dataset, DatasetDict):
        splits = list(dataset)
        split = split or ("train" if "train" in splits else None)
        if split not in splits:
            raise RowError(f"{source}: choose a split with --split: {', '.join(splits)}")
        dataset = dataset[split]
    columns = [image_column, question_column, answer_column]
    columns += [choices_column] if choices_column else []
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        found = ", ".join(dataset.column_names)
        raise RowError(f"{source}: no column {', '.join(missing)} (columns: {found})")
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))

    def parse(item: tuple[int, dict[str, Any]]) -> dict[str, Any]:
        index, record = item
        row = {"id": f"hf-{index}", "question": record[question_column]}
        row["answer"] = record[answer_column]
        if choices_column and record[choices_column]:
            if not isinstance(record[choices_column], list | tuple):
                raise ValueError(f"field 'choices': column {choices_column!r} holds no list")
            row["choices"] = [str(choice) for choice in record[choices_column]]
            row["answer"] = _choice_answer(row["answer"], row["choices"])
        cell = record[image_column]
        if cell is None:  # a text-only row
            return row
        if isinstance(cell, list | tuple):  # a list of images: ``images``
            row["images"] = [
                _stored(_image(value, f"images[{k}]"), f"hf-{index}-{k}.png")
                for k, value in enumerate(cell)
            ]
        else:
            row["image"] = _stored(_image(cell), f"hf-{index}.png")
        return row

    def _stored(image: Image.Image | str, name: str) -> str:
        """A dataset image as a path: a path cell as is, an image written as ``name``."""
        if isinstance(image, str):
            return image
        path = out / "images" / name
        written.append(path)
        _save_rgb(image, path)
        return str(path)

    items = ((f"{source}[{i}]", (i, record)) for i, record in enumerate(dataset))
    with _removed_on_error(out / "images") as written:
        (out / "images").mkdir(parents=True, exist_ok=True)
        loaded = collect_rows(items, parse, source, skip_invalid=skip_invalid)
        return _written(loaded, out, source)


def easy_vqa_folder() -> Path:
    """The ``data`` folder of the installed easy-vqa wheel (found without importing it)."""
    spec = importlib.util.find_spec("easy_vqa")
    if spec is None or spec.origin is None:
        raise RowError("easy-vqa is not installed: pip install easy-vqa, or pass --input")
    return Path(spec.origin).parent / "data"


SHAPE_ANSWERS = ("circle", "rectangle", "triangle")
YES_NO = ("yes", "no")


def easy_vqa_choices(answer: str, vocabulary: list[str], rng: random.Random) -> list[str]:
    """The options offered for an easy-vqa answer: yes/no, the three shapes, or the gold
    colour among three other colours (shuffled)."""
    if answer in YES_NO:
        return list(YES_NO)
    if answer in SHAPE_ANSWERS:
        return list(SHAPE_ANSWERS)
    colours = [word for word in vocabulary if word not in YES_NO + SHAPE_ANSWERS]
    options = rng.sample([c for c in colours if c != answer], 3) + [answer]
    rng.shuffle(options)
    return options


def import_easy_vqa(
    out: Path,
    *,
    source: Path | None = None,
    split: str = "train",
    limit: int | None = None,
    seed: int = 0,
    skip_invalid: bool = False,
) -> LoadedRows:
    """easy-vqa ``split`` -> ``out/rows.jsonl``, its images copied to ``out/images``."""
    data = source or easy_vqa_folder()
    questions_file = data / split / "questions.json"
    answers_file = data / "answers.txt"
    for needed in (questions_file, answers_file):
        if not needed.is_file():
            raise RowError(f"{needed}: no such file (is --input an easy-vqa data folder?)")
    check_outputs(out, images=True)
    try:
        vocabulary = answers_file.read_text(encoding="utf-8").split()
        questions = json.loads(questions_file.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError, JSONDecodeError
        raise RowError(f"{questions_file}: unreadable ({error})") from None
    if not isinstance(questions, list):
        raise RowError(f"{questions_file}: expected a JSON list of [question, answer, image]")
    questions = questions[:limit]
    rng = random.Random(seed)

    def parse(item: tuple[int, Any]) -> dict[str, Any]:
        index, entry = item
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[1], str)):
            raise ValueError("expected [question, answer, image id]")
        question, answer, image_id = entry
        if not isinstance(question, str):
            raise ValueError("field 'question' must be a string")
        if answer not in vocabulary:
            raise ValueError(f"answer {answer!r} is not in {answers_file}")
        if not isinstance(image_id, int | str) or not str(image_id).isalnum():
            raise ValueError(f"field 'image': bad image id {image_id!r}")
        original = data / split / "images" / f"{image_id}.png"
        if not original.is_file():
            raise ValueError(f"field 'image': no such file {original}")
        image = out / "images" / f"easy-vqa-{split}-{image_id}.png"
        if not image.exists():
            written.append(image)
            shutil.copyfile(original, image)
        choices = easy_vqa_choices(answer, vocabulary, rng)
        return {
            "id": f"easy-vqa-{split}-{index}",
            "image": str(image),
            "question": question[:1].upper() + question[1:],
            "answer": LETTERS[choices.index(answer)],
            "choices": choices,
            "answer_text": answer,
            "family": "easy-vqa",
        }

    items = ((f"{questions_file}[{i}]", (i, q)) for i, q in enumerate(questions))
    with _removed_on_error(out / "images") as written:
        (out / "images").mkdir(parents=True, exist_ok=True)
        return _written(collect_rows(items, parse, out, skip_invalid=skip_invalid), out, data)
