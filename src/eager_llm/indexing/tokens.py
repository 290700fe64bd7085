"""Item indices as token strings, and their addition to a Hugging Face tokenizer and model.

Level ``l`` of a code is written in its own token family: ``<a_12>`` is value 12 at level 0,
``<b_7>`` value 7 at level 1, and so on, so the same value at two levels gives two tokens.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from .token_init import code_members, projected_rows, title_rows

FAMILIES = string.ascii_lowercase
_TOKEN = re.compile(r"<([a-z])_(\d+)>")


def token(level: int, value: int) -> str:
    """The token of ``value`` at ``level``: ``token(1, 7) == "<b_7>"``."""
    if not 0 <= level < len(FAMILIES):
        raise ValueError(f"at most {len(FAMILIES)} levels have token families, got level {level}")
    return f"<{FAMILIES[level]}_{value}>"


def build_item_index(item_ids: Sequence[str], codes: np.ndarray) -> dict[str, list[str]]:
    """Item id -> its tokens, from ``codes`` (n_items, levels) whose row i is item_ids[i]."""
    if len(item_ids) != len(codes):
        raise ValueError(f"{len(item_ids)} item ids but {len(codes)} code rows")
    return {
        item_id: [token(level, int(value)) for level, value in enumerate(row)]
        for item_id, row in zip(item_ids, codes, strict=True)
    }


def save_item_index(item_index: Mapping[str, Sequence[str]], path: str | Path) -> None:
    """Write ``item_index`` as a JSON object, one item per line."""
    lines = [
        f"{json.dumps(item_id)}: {json.dumps(list(tokens))}"
        for item_id, tokens in item_index.items()
    ]
    Path(path).write_text("{\n" + ",\n".join(lines) + "\n}\n")


def load_item_index(path: str | Path) -> dict[str, list[str]]:
    """The item index written by :func:`save_item_index`, checked to be a bijection."""
    item_index = json.loads(Path(path).read_text())
    check_bijection(item_index)
    return item_index


def check_bijection(item_index: Mapping[str, Sequence[str]]) -> None:
    """Raise ``ValueError`` unless every item has an index no other item has."""
    owner: dict[tuple[str, ...], str] = {}
    for item_id, tokens in item_index.items():
        key = tuple(tokens)
        if key in owner:
            raise ValueError(f"items {owner[key]!r} and {item_id!r} share the index {''.join(key)}")
        owner[key] = item_id


def index_vocabulary(item_index: Mapping[str, Sequence[str]]) -> list[str]:
    """The distinct tokens of ``item_index``, by level then value."""
    tokens = {t for index in item_index.values() for t in index}
    for t in tokens:
        if not _TOKEN.fullmatch(t):
            raise ValueError(f"{t!r} is not an index token (<letter_number>)")
    return sorted(tokens, key=lambda t: (t[1], int(t[3:-1])))


def initial_rows(
    matrix: torch.Tensor,
    tokens: Sequence[str],
    item_index: Mapping[str, Sequence[str]],
    title_ids: Mapping[str, Sequence[int]] | None,
    token_vectors: Mapping[str, np.ndarray],
) -> torch.Tensor:
    """(len(tokens), H) starting rows from ``matrix`` (V, H): projected source vectors where
    ``token_vectors`` has the token, else title rows (with ``title_ids``), else the mean row."""
    rows = matrix.detach().float().mean(0).expand(len(tokens), -1).clone()
    projected = [i for i, tok in enumerate(tokens) if tok in token_vectors]
    if projected:
        vectors = [token_vectors[tokens[i]] for i in projected]
        rows[projected] = projected_rows(matrix, vectors)
    titled = [i for i, tok in enumerate(tokens) if tok not in token_vectors]
    if title_ids is not None and titled:
        members = code_members(item_index)
        rows[titled] = title_rows(matrix, title_ids, members, [tokens[i] for i in titled])
    return rows


def add_index_tokens(
    tokenizer,
    model,
    item_index: Mapping[str, Sequence[str]],
    item_titles: Mapping[str, str] | None = None,
    token_vectors: Mapping[str, np.ndarray] | None = None,
) -> list[str]:
    """Add the index tokens to ``tokenizer`` and grow ``model``'s embeddings to match.

    Each token becomes one added (non-special) token, so it is never split and decoding
    gives it back. The new rows of the input embeddings (and of the LM head when it is not
    tied to them) start from :func:`~.token_init.projected_rows` of ``token_vectors``
    (token -> centred source vector, :func:`~.token_init.code_vectors`) for the tokens it
    has, from :func:`~.token_init.title_rows` of the items under each code for the others
    when ``item_titles`` (item id -> title) is given, else from the mean of the existing
    rows (every item then scores the same until training). Returns the tokens that were not
    in the vocabulary before, in id order.
    """
    vocabulary = index_vocabulary(item_index)
    known = tokenizer.get_vocab()
    new = [t for t in vocabulary if t not in known]
    title_ids = None
    if item_titles is not None and new:
        encoded = tokenizer(list(item_titles.values()), add_special_tokens=False)["input_ids"]
        title_ids = dict(zip(item_titles, encoded, strict=True))
    tokenizer.add_tokens(new)
    matrices = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()
    if output is not None and output.weight is not matrices[0]:
        matrices.append(output.weight)
    initial = [initial_rows(m, new, item_index, title_ids, token_vectors or {}) for m in matrices]
    rows = max(len(tokenizer), matrices[0].shape[0])
    model.resize_token_embeddings(rows, mean_resizing=False)
    ids = tokenizer.convert_tokens_to_ids(new)
    resized = [model.get_input_embeddings().weight]
    if len(matrices) == 2:
        resized.append(model.get_output_embeddings().weight)
    with torch.no_grad():
        for matrix, values in zip(resized, initial, strict=True):
            matrix[ids] = values.to(matrix.dtype)
    return new
