"""Non-LLM baselines of the evaluation: most-popular and SASRec, as top-k item rankings.

Both rank the whole catalogue and return item indices of the leave-one-out split, best
first. ``seen`` says what happens to the items of a user's history: ``"keep"`` (the
default, standard leave-one-out full ranking; the LLM's beam search cannot mask them
either, so all methods compete on the same candidate set) or ``"remove"`` (they score
``-inf`` and never fill a slot; the list still holds ``k`` items when the catalogue has
``k`` items outside the history).

Ties: equal scores rank the lower item index first (:func:`top_k`), so every baseline is
deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from eager_llm.encoders import SASRec

SEEN = ("keep", "remove")


def check_seen(seen: str) -> None:
    """Raise ``ValueError`` unless ``seen`` is one of :data:`SEEN`."""
    if seen not in SEEN:
        raise ValueError(f"seen must be 'keep' or 'remove', got {seen!r}")


def top_k(
    scores: np.ndarray | torch.Tensor,
    k: int,
    histories: Sequence[Sequence[int]] | None = None,
    seen: str = "keep",
) -> list[list[int]]:
    """The ``k`` best item indices of each row of ``scores`` (B, n_items), best first; equal
    scores rank the lower item index first. With ``seen="remove"`` the items of
    ``histories[row]`` are left out (the list is shorter than ``k`` only when fewer than
    ``k`` items lie outside the history)."""
    check_seen(seen)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().numpy()
    scores = np.array(scores, dtype=np.float64)  # a copy: masking must not leak out
    if scores.ndim != 2:
        raise ValueError(f"scores must be (users, items), got shape {scores.shape}")
    n_items = scores.shape[1]
    allowed = np.full(len(scores), n_items)
    if seen == "remove":
        if histories is None or len(histories) != len(scores):
            raise ValueError("seen='remove' needs one history per row of scores")
        for row, history in enumerate(histories):
            items = np.unique(np.asarray(history, dtype=np.int64))
            scores[row, items] = -np.inf
            allowed[row] = n_items - len(items)
    # the lower index wins ties: a stable sort of -score (history items sort last, -inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [order[row, : min(k, allowed[row])].tolist() for row in range(len(order))]


def popularity(train: Sequence[np.ndarray], n_items: int) -> np.ndarray:
    """Interactions per item over the training sequences: int64 (n_items,)."""
    items = np.concatenate([np.asarray(sequence, dtype=np.int64) for sequence in train])
    return np.bincount(items, minlength=n_items)


def most_popular(
    train: Sequence[np.ndarray],
    n_items: int,
    n_users: int,
    k: int,
    *,
    histories: Sequence[Sequence[int]] | None = None,
    seen: str = "keep",
) -> list[list[int]]:
    """The ``k`` most interacted-with training items (ties: lower item index first) for each
    of ``n_users`` users: the same list under ``seen="keep"``; under ``seen="remove"`` each
    user's ``histories`` items are skipped. Validation and test targets are not counted."""
    check_seen(seen)
    counts = popularity(train, n_items)
    if seen == "keep":
        top = np.argsort(-counts, kind="stable")[:k].tolist()
        return [list(top) for _ in range(n_users)]
    if histories is None or len(histories) != n_users:
        raise ValueError("seen='remove' needs the histories of the n_users users")
    return top_k(np.broadcast_to(counts, (n_users, n_items)), k, histories, seen)


def sasrec_rankings(
    folder: str | Path,
    histories: Sequence[Sequence[int]],
    k: int,
    batch_size: int = 1024,
    *,
    seen: str = "keep",
) -> list[list[int]]:
    """Top-``k`` items (all items when fewer) of the SASRec saved in ``folder`` for each
    history (item indices, oldest first); ``seen="remove"`` leaves the history items out."""
    check_seen(seen)
    model = SASRec.load(folder)
    k = min(k, model.num_items)
    ranked: list[list[int]] = []
    for start in range(0, len(histories), batch_size):
        batch = histories[start : start + batch_size]
        ranked += top_k(model.score(batch), k, batch, seen)
    return ranked
