"""Item co-occurrence / first-order Markov chain over the user's last items.

``C[a, b]`` counts, over the training sequences, how often item ``b`` follows item ``a``
within ``window`` steps (``window=1``: the first-order transition counts). A user with
history ``h`` scores item ``b`` by ``sum_j decay**j * C'[h[-1 - j], b]`` over the ``last``
most recent items (j = 0 is the last item), where ``C'`` is ``C`` or, with ``normalise``,
its rows divided by their sums (transition probabilities). Only training sequences are
counted: no validation or test target is ever seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .popular import popularity
from .ranking import check_seen, top_k


@dataclass(frozen=True)
class MarkovConfig:
    """Hyper-parameters of :func:`markov_scores` (module docstring)."""

    last: int = 5
    decay: float = 1.0
    window: int = 1
    normalise: bool = False


def transition_counts(train: Sequence[np.ndarray], n_items: int, window: int = 1) -> np.ndarray:
    """(n_items, n_items) float64: ``[a, b]`` = times ``b`` came 1..``window`` steps after
    ``a`` in a training sequence."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    counts = np.zeros((n_items, n_items))
    for sequence in train:
        sequence = np.asarray(sequence, dtype=np.int64)
        for gap in range(1, min(window, len(sequence) - 1) + 1):
            np.add.at(counts, (sequence[:-gap], sequence[gap:]), 1.0)
    return counts


def markov_scores(
    transitions: np.ndarray, histories: Sequence[Sequence[int]], config: MarkovConfig
) -> np.ndarray:
    """(len(histories), n_items) scores from :func:`transition_counts` (module docstring)."""
    if config.last < 1:
        raise ValueError(f"last must be >= 1, got {config.last}")
    matrix = transitions
    if config.normalise:
        matrix = transitions / np.maximum(transitions.sum(1, keepdims=True), 1.0)
    scores = np.zeros((len(histories), len(matrix)))
    for row, history in enumerate(histories):
        recent = np.asarray(history, dtype=np.int64)[::-1][: config.last]  # newest first
        if len(recent):
            weights = config.decay ** np.arange(len(recent))
            scores[row] = weights @ matrix[recent]
    return scores


def markov_rankings(
    train: Sequence[np.ndarray],
    histories: Sequence[Sequence[int]],
    k: int,
    *,
    n_items: int,
    config: MarkovConfig = MarkovConfig(),
    seen: str = "keep",
) -> list[list[int]]:
    """Top-``k`` item indices per history, best first; ties (e.g. the items no recent item
    leads to) go to the more popular training item, then the lower index."""
    check_seen(seen)
    scores = markov_scores(transition_counts(train, n_items, config.window), histories, config)
    return top_k(scores, k, histories, seen, tiebreak=popularity(train, n_items))
