"""Top-k lists and target ranks from item scores, the one tie rule and the seen protocols.

Every baseline scores the whole catalogue (B, n_items) and ranks it here. ``seen`` says what
happens to the items of a user's history: ``"keep"`` (standard leave-one-out full ranking;
the LLM's beam search cannot mask them either) or ``"remove"`` (they score ``-inf`` and never
fill a slot; a list still holds ``k`` items when the catalogue has ``k`` items outside the
history, and a target's rank counts only the items outside the history).

Ties: equal scores rank the item with the larger ``tiebreak`` first (the baselines pass the
training popularity), then the lower item index, so every baseline is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

SEEN = ("keep", "remove")


def check_seen(seen: str) -> None:
    """Raise ``ValueError`` unless ``seen`` is one of :data:`SEEN`."""
    if seen not in SEEN:
        raise ValueError(f"seen must be 'keep' or 'remove', got {seen!r}")


def _masked(
    scores: np.ndarray | torch.Tensor,
    histories: Sequence[Sequence[int]] | None,
    seen: str,
) -> tuple[np.ndarray, np.ndarray]:
    """A float64 copy of ``scores`` with history items at ``-inf`` under ``seen="remove"``,
    and the number of rankable items per row."""
    check_seen(seen)
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().numpy()
    scores = np.array(scores, dtype=np.float64)  # a copy: masking must not leak out
    if scores.ndim != 2:
        raise ValueError(f"scores must be (users, items), got shape {scores.shape}")
    allowed = np.full(len(scores), scores.shape[1])
    if seen == "remove":
        if histories is None or len(histories) != len(scores):
            raise ValueError("seen='remove' needs one history per row of scores")
        for row, history in enumerate(histories):
            items = np.unique(np.asarray(history, dtype=np.int64))
            scores[row, items] = -np.inf
            allowed[row] = scores.shape[1] - len(items)
    return scores, allowed


def full_order(scores: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """(B, n_items) item indices of each row, best first: by score, then larger
    ``tiebreak`` (n_items,), then lower index."""
    if tiebreak is None:
        return np.argsort(-scores, axis=1, kind="stable")
    second = np.broadcast_to(-np.asarray(tiebreak, dtype=np.float64), scores.shape)
    return np.lexsort((second, -scores), axis=1)  # lexsort is stable: lower index last key


def top_k(
    scores: np.ndarray | torch.Tensor,
    k: int,
    histories: Sequence[Sequence[int]] | None = None,
    seen: str = "keep",
    tiebreak: np.ndarray | None = None,
) -> list[list[int]]:
    """The ``k`` best item indices of each row of ``scores`` (B, n_items), best first (ties:
    module docstring). With ``seen="remove"`` the items of ``histories[row]`` are left out
    (the list is shorter than ``k`` only when fewer than ``k`` items lie outside it)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    scores, allowed = _masked(scores, histories, seen)
    order = full_order(scores, tiebreak)[:, :k]
    return [order[row, : min(k, allowed[row])].tolist() for row in range(len(order))]


def target_ranks(
    scores: np.ndarray | torch.Tensor,
    targets: Sequence[int],
    histories: Sequence[Sequence[int]] | None = None,
    seen: str = "keep",
    tiebreak: np.ndarray | None = None,
) -> np.ndarray:
    """0-based position of each target in the full ranking :func:`top_k` would give (int64,
    (B,)); -1 when the target is itself a removed history item."""
    scores, _ = _masked(scores, histories, seen)
    rows = np.arange(len(scores))
    targets = np.asarray(targets, dtype=np.int64)
    own = scores[rows, targets][:, None]
    ahead = scores > own  # counted without sorting: the items full_order puts first
    tied = scores == own
    index = np.arange(scores.shape[1])
    if tiebreak is None:
        ahead |= tied & (index < targets[:, None])
    else:
        tie = np.asarray(tiebreak, dtype=np.float64)
        own_tie = tie[targets][:, None]
        ahead |= tied & ((tie > own_tie) | ((tie == own_tie) & (index < targets[:, None])))
    removed = np.isneginf(own[:, 0])
    return np.where(removed, -1, ahead.sum(1)).astype(np.int64)
