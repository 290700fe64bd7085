"""Non-LLM baselines of the evaluation: most-popular and SASRec, as top-k item rankings.

Both rank the whole catalogue and return item indices of the leave-one-out split, best
first. Items of a user's history are not masked, the default of :class:`SASRec` and of
standard leave-one-out full ranking; the LLM's beam search cannot mask them either, so all
methods compete on the same candidate set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eager_llm.encoders import SASRec


def popularity(train: Sequence[np.ndarray], n_items: int) -> np.ndarray:
    """Interactions per item over the training sequences: int64 (n_items,)."""
    items = np.concatenate([np.asarray(sequence, dtype=np.int64) for sequence in train])
    return np.bincount(items, minlength=n_items)


def most_popular(
    train: Sequence[np.ndarray], n_items: int, n_users: int, k: int
) -> list[list[int]]:
    """The ``k`` most interacted-with training items (ties: lower item index first), the
    same list for each of ``n_users`` users. Validation and test targets are not counted."""
    counts = popularity(train, n_items)
    top = np.argsort(-counts, kind="stable")[:k].tolist()
    return [list(top) for _ in range(n_users)]


def sasrec_rankings(
    folder: str | Path, histories: Sequence[Sequence[int]], k: int, batch_size: int = 1024
) -> list[list[int]]:
    """Top-``k`` items (all items when fewer) of the SASRec saved in ``folder`` for each
    history (item indices, oldest first)."""
    model = SASRec.load(folder)
    k = min(k, model.num_items)
    ranked: list[list[int]] = []
    for start in range(0, len(histories), batch_size):
        ranked += model.recommend(histories[start : start + batch_size], k).tolist()
    return ranked
