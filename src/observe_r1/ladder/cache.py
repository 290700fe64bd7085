"""The builder's rollout cache: an append-only JSONL log in ``OUT.cache/rollouts.jsonl``.

One line per (model, row, prompt, sampling) key, written and flushed as soon as its batch is
generated, so a killed builder loses at most the batch in flight and a rerun generates only
what is missing. A line cut short by the kill is dropped on the next start. The key covers
what decides the generation (model id, row id, the bytes of every image, chat messages, sampling
settings), not the gold answer: correcting an answer re-scores without regenerating.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from model_zoo.cache import file_sha256
from observe_r1.ladder.rollouts import Completion, Messages, Sampling
from observe_r1.rows import InputError, row_images


def rollout_key(model_id: str, row: dict[str, Any], messages: Messages, sampling: Sampling) -> str:
    """The sha256 naming one pass's completions for one row."""
    images = [file_sha256(path) for path in row_images(row)]
    identity = {
        "model": model_id,
        "row": row.get("id"),
        # one image: the key of the one-image rows before `images` existed (their caches
        # stay valid); otherwise every image's bytes, in order ([] for a text-only row)
        **({"image": images[0]} if len(images) == 1 else {"images": images}),
        "messages": messages,
        "sampling": sampling.as_dict(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


class RolloutCache:
    """Completions by key, loaded from and appended to ``folder/rollouts.jsonl``."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / "rollouts.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._entries: dict[str, list[Completion]] = {}
        if self.path.is_file():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]  # a line cut by a kill has no newline
        if len(complete) < len(data):
            self.path.write_bytes(complete)
        for number, line in enumerate(complete.splitlines(), start=1):
            try:
                record = json.loads(line)
                self._entries[record["key"]] = [Completion(**c) for c in record["completions"]]
            except (ValueError, KeyError, TypeError) as error:  # UnicodeDecodeError included
                raise InputError(
                    f"{self.path}:{number}: corrupt cache line ({error}); delete the file to "
                    "regenerate its rollouts"
                ) from None

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> list[Completion]:
        return self._entries[key]

    def put(self, key: str, completions: list[Completion]) -> None:
        record = {"key": key, "completions": [asdict(c) for c in completions]}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._entries[key] = completions
