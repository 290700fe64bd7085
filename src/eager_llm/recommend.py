"""``eager-llm recommend --input histories.jsonl --output topk.jsonl``: the top-k of many users.

Input, one JSON object a line: ``{"user": "A1B2", "history": ["item id", ...]}``, oldest
first (``user`` optional: the 1-based line number by default; item ids may be JSON
numbers). Output, one line per input line and in its order: ``{"line": 1, "user": "A1B2",
"history_digest": "…", "seen": "keep", "beam_scores": "vocabulary", "items": [...],
"scores": [...]}`` (best first; scores are log-probabilities; ``history_digest``:
:attr:`Request.digest`; ``seen: remove`` never recommends an item of the line's history;
``beam_scores``: :data:`eager_llm.decoding.BEAM_SCORES`).

The whole input is checked before the model loads; a bad line is a ``ValueError`` naming
the file and line. The output is append-only and written a batch at a time, so a killed
run loses at most the batch in flight: a rerun keeps the complete lines (a half-written
last line is cut off), checks that they belong to this input (line, user and history)
and the options (``k``, ``seen``, ``beam_scores``), and continues.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from eager_llm.run_decoder import RunDecoder

DEFAULT_OPTIONS = {"seen": "keep", "beam_scores": "vocabulary"}


@dataclass(frozen=True)
class Request:
    """Line ``line`` (1-based) of the input: ``user`` and ``history`` (item ids)."""

    line: int
    user: object
    history: list[str]

    @property
    def digest(self) -> str:
        """The history's fingerprint: the first 16 hex digits of the SHA-256 of its ids."""
        return hashlib.sha256(json.dumps(self.history).encode()).hexdigest()[:16]


def _item_ids(value, where: str) -> list[str]:
    if not isinstance(value, list) or not all(
        isinstance(item, str | int) and not isinstance(item, bool) for item in value
    ):
        raise ValueError(f"{where}: 'history' must be a list of item ids")
    if not value:
        raise ValueError(f"{where}: the history is empty")
    return [str(item) for item in value]


def read_requests(path: str | Path, item_index: Mapping[str, Sequence[str]]) -> list[Request]:
    """Every line of ``path`` as a :class:`Request`; raises ``ValueError`` naming the line
    that is not a JSON object with a ``history`` of item ids that ``item_index`` knows."""
    requests = []
    for number, text in enumerate(Path(path).read_text().splitlines(), 1):
        where = f"{path} line {number}"
        try:
            record = json.loads(text)
        except ValueError as error:
            raise ValueError(f"{where}: not JSON ({error})") from None
        if not isinstance(record, dict) or "history" not in record:
            raise ValueError(f'{where}: not an object with a "history" ({text[:60]!r})')
        history = _item_ids(record["history"], where)
        if unknown := [item for item in history if item not in item_index]:
            raise ValueError(
                f"{where}: unknown item ids (not in the run's index): {', '.join(unknown)}"
            )
        requests.append(Request(number, record.get("user", number), history))
    if not requests:
        raise ValueError(f"{path}: no histories")
    return requests


def _identity(line: int, user: object, digest: str) -> str:
    return f"line {line}, user {user!r}, history {digest}"


def list_lengths(requests: Sequence[Request], k: int, n_items: int, seen: str) -> list[int]:
    """Items in each request's answer from a catalogue of ``n_items``: ``min(k, n_items)``,
    under ``seen="remove"`` ``min(k, n_items - distinct history items)``."""
    if seen == "keep":
        return [min(k, n_items)] * len(requests)
    return [min(k, n_items - len(set(request.history))) for request in requests]


def completed(
    output: Path,
    requests: Sequence[Request],
    lengths: Sequence[int],
    options: Mapping[str, str] = DEFAULT_OPTIONS,
) -> int:
    """How many requests ``output`` already answers (``lengths[i]`` items for request
    ``i``: :func:`list_lengths`, under ``options``: ``seen`` and ``beam_scores``; a line
    without them was written with :data:`DEFAULT_OPTIONS`); a half-written last line is cut
    off. Raises ``ValueError`` naming the first line written for another input (line, user
    or history), list length or option."""
    if not output.is_file():
        return 0
    data = output.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]  # a run killed inside a write leaves a partial line
    lines = whole.decode(errors="replace").splitlines()
    if len(lines) > len(requests):
        raise ValueError(f"{output}: {len(lines)} lines, more than the input's {len(requests)}")
    for number, (text, request, n_items) in enumerate(
        zip(lines, requests, lengths, strict=False), 1
    ):
        try:
            record = json.loads(text)
            written = (record["line"], record["user"], record["history_digest"])
            same = written == (request.line, request.user, request.digest)
            length = len(record["items"])
            used = {key: record.get(key, default) for key, default in DEFAULT_OPTIONS.items()}
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{output} line {number}: not a line of `recommend`") from None
        if not same:
            ours = (request.line, request.user, request.digest)
            raise ValueError(
                f"{output} line {number}: answers another input ({_identity(*written)}; this "
                f"input: {_identity(*ours)}); remove it or choose another --output"
            )
        if differ := [key for key, value in used.items() if value != options[key]]:
            key = differ[0]
            raise ValueError(
                f"{output} line {number}: written with --{key.replace('_', '-')} {used[key]}, "
                f"this run has {options[key]}; remove it or choose another --output"
            )
        if length != n_items:
            raise ValueError(
                f"{output} line {number}: {length} items, this run gives {n_items}: written "
                "with another --k?"
            )
    if whole != data:
        output.write_bytes(whole)
    return len(lines)


def recommend_file(
    decoder: RunDecoder,
    requests: Sequence[Request],
    output: str | Path,
    *,
    start: int = 0,
    k: int = 10,
    batch_size: int = 16,
    options: Mapping[str, str] = DEFAULT_OPTIONS,
    progress: bool = True,
) -> None:
    """Append the top-``k`` of ``requests[start:]`` to ``output`` (``start``: what
    :func:`completed` found there), a batch of ``batch_size`` at a time in input order,
    under ``options`` (``seen``: ``keep`` or ``remove`` each line's history items;
    ``beam_scores``)."""
    with (
        Path(output).open("a") as sink,
        tqdm(total=len(requests), initial=start, unit="user", disable=not progress) as bar,
    ):
        for first in range(start, len(requests), batch_size):
            batch = requests[first : first + batch_size]
            prompts = decoder.prompts([request.history for request in batch])
            exclude = [request.history for request in batch]
            found = decoder.top_k(
                prompts,
                k,
                batch_size,
                exclude=exclude if options["seen"] == "remove" else None,
                beam_scores=options["beam_scores"],
            )
            for request, items in zip(batch, found, strict=True):
                record = {"line": request.line, "user": request.user,
                          "history_digest": request.digest, **options,
                          "items": [item for item, _ in items],
                          "scores": [round(score, 4) for _, score in items]}  # fmt: skip
                sink.write(json.dumps(record) + "\n")
            sink.flush()
            bar.update(len(batch))
