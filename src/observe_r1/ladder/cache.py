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
from observe_r1.data.rows import InputError, row_images
from observe_r1.ladder.rollouts import Completion, Messages, Sampling


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


PART = "rollouts.part-{rank}.jsonl"  # what process `rank` > 0 of a sharded build generated


class RolloutCache:
    """Completions by key, loaded from ``folder/rollouts.jsonl`` (and the part files of a
    sharded build, ``rollouts.part-<rank>.jsonl``) and appended to this process's file: the
    main file for rank 0, its part file for every other rank (one writer per file).
    :meth:`merge` moves other processes' completions into the main file (rank 0), after
    which each process deletes its own part (:meth:`drop_part`). Rank 0 opens the cache
    first and moves any part left by a killed build into the main file."""

    def __init__(self, folder: str | Path, *, rank: int = 0):
        self.folder = Path(folder)
        self.path = self.folder / "rollouts.jsonl"
        self.own = self.path if rank == 0 else self.folder / PART.format(rank=rank)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._entries: dict[str, list[Completion]] = {}
        if self.path.is_file():
            self._entries = self._load(self.path, repair=rank == 0)
        for part in sorted(self.folder.glob(PART.format(rank="*"))):
            # parts a killed sharded build left: the main process (which opens the cache
            # before the others) moves them into the main file
            self.merge(self._load(part, repair=False), write=rank == 0)
            if rank == 0:
                part.unlink()

    @staticmethod
    def _load(path: Path, *, repair: bool) -> dict[str, list[Completion]]:
        data = path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]  # a line cut by a kill has no newline
        if len(complete) < len(data) and repair:
            path.write_bytes(complete)
        entries = {}
        for number, line in enumerate(complete.splitlines(), start=1):
            try:
                record = json.loads(line)
                entries[record["key"]] = [Completion(**c) for c in record["completions"]]
            except (ValueError, KeyError, TypeError) as error:  # UnicodeDecodeError included
                raise InputError(
                    f"{path}:{number}: corrupt cache line ({error}); delete the file to "
                    "regenerate its rollouts"
                ) from None
        return entries

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> list[Completion]:
        return self._entries[key]

    def put(self, key: str, completions: list[Completion]) -> None:
        self._append(self.own, {key: completions})
        self._entries[key] = completions

    def merge(self, entries: dict[str, list[Completion]], *, write: bool) -> None:
        """Add completions another process generated; ``write`` (rank 0): also append them
        to the main file, so that the cache holds them once the parts are dropped."""
        new = {key: value for key, value in entries.items() if key not in self._entries}
        if write and new:
            self._append(self.path, new)
        self._entries.update(new)

    def drop_part(self) -> None:
        """Delete this process's part file (its lines are in the main file by now)."""
        if self.own != self.path:
            self.own.unlink(missing_ok=True)

    @staticmethod
    def _append(path: Path, entries: dict[str, list[Completion]]) -> None:
        with path.open("a", encoding="utf-8") as handle:
            for key, completions in entries.items():
                record = {"key": key, "completions": [asdict(c) for c in completions]}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
