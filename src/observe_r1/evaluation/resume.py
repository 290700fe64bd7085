"""The answered batches of an unfinished eval, kept so that a stopped eval resumes.

``observe-r1 eval`` appends each batch's responses to ``<out>/predictions.partial.jsonl``
as soon as it is generated (line 1: the settings; then one ``{"start", "texts", "tokens"}``
line per batch, flushed and synced). A rerun with the same settings answers only the
batches not in the file; with other settings it stops with an error naming the first field
that differs, so that no earlier work is mixed in or thrown away. The file is removed
once the report is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from observe_r1.data.rows import InputError

PARTIAL_FILE = "predictions.partial.jsonl"


class PartialResponses:
    """Batches already answered, by the index of their first row.

    ``settings``: everything the responses depend on (model, data and its hash, format,
    decoding); a JSON-able dict.
    """

    def __init__(self, path: Path, settings: dict[str, Any]):
        self.path, self.settings = path, settings
        self.batches: dict[int, tuple[list[list[str]], list[list[int]]]] = {}
        if not path.exists():  # written with the first batch: a failed start leaves nothing
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [settings]
        header = _json_or_none(lines[0]) if lines else None
        if header != settings:
            raise InputError(_mismatch(path, header, settings))
        for line in lines[1:]:
            batch = _json_or_none(line)
            if batch is None:  # the line a stop cut short; everything after it is redone
                break
            self.batches[batch["start"]] = (batch["texts"], batch["tokens"])
            kept.append(batch)
        if len(kept) != len(lines):
            self._write(kept)

    def get(self, start: int) -> tuple[list[list[str]], list[list[int]]] | None:
        """``(texts, tokens)`` of the batch that begins at row ``start``, or None."""
        return self.batches.get(start)

    def add(self, start: int, texts: list[list[str]], tokens: list[list[int]]) -> None:
        """Record one batch: ``texts[i][j]`` sample j of its row i, ``tokens`` their lengths."""
        self.batches[start] = (texts, tokens)
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._write([self.settings])
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"start": start, "texts": texts, "tokens": tokens}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def finish(self) -> None:
        """The report is written: the partial file has served."""
        self.path.unlink(missing_ok=True)

    def _write(self, records: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(record) + "\n" for record in records)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, self.path)


def _json_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def _mismatch(path: Path, header: Any, settings: dict[str, Any]) -> str:
    """The error for a partial file written with other settings."""
    where = f"{path}: an unfinished eval with other settings"
    fix = f"rerun with its settings to resume it, or delete {path.name} to start over"
    if not isinstance(header, dict):
        return f"{path}: line 1 is not the settings of an eval; delete the file to start over"
    for field, value in settings.items():
        if header.get(field) != value:
            return f"{where} ({field}: {header.get(field)!r} there, {value!r} now); {fix}"
    extra = sorted(set(header) - set(settings))
    return f"{where} (field {extra[0]!r} there, not now); {fix}"
