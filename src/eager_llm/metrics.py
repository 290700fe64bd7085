"""Top-k ranking metrics for next-item recommendation with one relevant item per user.

Every user has a ranked list of recommended items (best first) and exactly one held-out
target item. With a single relevant item the ideal DCG is 1, so

- Recall@k = 1 if the target is among the first k ranked items, else 0;
- NDCG@k = 1 / log2(rank + 1) if the target sits at 1-based position rank <= k, else 0;
- Hit@k (HR@k, the name LC-Rec and EAGER-LLM report) = 1 if the target is among the first
  k, else 0: with one relevant item it *is* Recall@k, the same formula under another name
  (they differ only when a user has several relevant items).

Conventions:
- A target that is absent from the ranked list (or ranked below k) scores 0.
- Duplicates in a ranked list do not take extra positions: only the first occurrence of
  an item counts and later copies are dropped before positions are assigned, so the list
  ``[a, a, b]`` ranks ``b`` second.
- k larger than a list means the whole list; empty lists are allowed (they score 0).
- The aggregate functions return the mean over users.

A model that scores every item (SASRec) skips the ranked lists: ``score_ranks`` gives each
target's 0-based rank among all items (its expected rank among items of equal score) and
``metrics_from_ranks`` the same two metrics.
Both paths end in one formula, :func:`per_user_from_ranks`; the rest of the repository
(the evaluation, the SASRec encoder, the benchmarks) computes ranking metrics only here.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch


def _check(ranked: Sequence[Sequence[Hashable]], targets: Sequence[Hashable], k: int) -> None:
    if len(ranked) != len(targets):
        raise ValueError(f"{len(ranked)} ranked lists but {len(targets)} targets")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def target_rank(ranked: Sequence[Hashable], target: Hashable) -> int | None:
    """1-based position of ``target`` in ``ranked`` after dropping repeated items, or None."""
    seen: set[Hashable] = set()
    for item in ranked:
        if item in seen:
            continue
        seen.add(item)
        if item == target:
            return len(seen)
    return None


def per_user_from_ranks(ranks: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Recall@k (0 or 1) and NDCG@k (1 / log2(rank + 2) inside the top k) of every user from
    0-based ranks (B,) (``inf`` = target absent): two float arrays of shape (B,)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    hit = ranks < k
    gain = np.where(hit, 1 / np.log2(np.where(hit, ranks, 0.0) + 2), 0.0)
    return hit.astype(np.float64), gain


def list_ranks(ranked: Sequence[Sequence[Hashable]], targets: Sequence[Hashable]) -> np.ndarray:
    """0-based rank of each target in its ranked list (:func:`target_rank` - 1; ``inf`` when
    absent): float array of shape (n_users,)."""
    ranks = [target_rank(items, target) for items, target in zip(ranked, targets, strict=True)]
    return np.array([np.inf if r is None else r - 1 for r in ranks], dtype=np.float64)


def per_user_recall(
    ranked: Sequence[Sequence[Hashable]], targets: Sequence[Hashable], k: int
) -> np.ndarray:
    """Recall@k of every user: float array of shape (n_users,) with values in {0, 1}."""
    _check(ranked, targets, k)
    return per_user_from_ranks(list_ranks(ranked, targets), k)[0]


def per_user_ndcg(
    ranked: Sequence[Sequence[Hashable]], targets: Sequence[Hashable], k: int
) -> np.ndarray:
    """NDCG@k of every user (IDCG = 1): float array of shape (n_users,)."""
    _check(ranked, targets, k)
    return per_user_from_ranks(list_ranks(ranked, targets), k)[1]


def recall_at_k(ranked: Sequence[Sequence[Hashable]], targets: Sequence[Hashable], k: int) -> float:
    """Mean Recall@k over users (0.0 for zero users)."""
    scores = per_user_recall(ranked, targets, k)
    return float(scores.mean()) if scores.size else 0.0


def ndcg_at_k(ranked: Sequence[Sequence[Hashable]], targets: Sequence[Hashable], k: int) -> float:
    """Mean NDCG@k over users (0.0 for zero users)."""
    scores = per_user_ndcg(ranked, targets, k)
    return float(scores.mean()) if scores.size else 0.0


def hit_at_k(ranked: Sequence[Sequence[Hashable]], targets: Sequence[Hashable], k: int) -> float:
    """Mean Hit@k over users: :func:`recall_at_k` (one relevant item per user)."""
    return recall_at_k(ranked, targets, k)


def evaluate_rankings(
    ranked: Sequence[Sequence[Hashable]],
    targets: Sequence[Hashable],
    ks: Sequence[int] = (5, 10),
    hit_ks: Sequence[int] = (),
) -> dict[str, float | int]:
    """All metrics at once: ``{"recall@5": ..., "ndcg@5": ..., ..., "hit@1": ...,
    "n_users": n}`` (recall and NDCG at ``ks``, then Hit at ``hit_ks``)."""
    result: dict[str, float | int] = {}
    for k in ks:
        result[f"recall@{k}"] = recall_at_k(ranked, targets, k)
        result[f"ndcg@{k}"] = ndcg_at_k(ranked, targets, k)
    for k in hit_ks:
        result[f"hit@{k}"] = hit_at_k(ranked, targets, k)
    _check(ranked, targets, min([*ks, *hit_ks], default=1))
    result["n_users"] = len(targets)
    return result


def score_ranks(scores: torch.Tensor, targets: Sequence[int]) -> np.ndarray:
    """0-based rank of each target among all items: ``scores`` (B, num_items), ``targets``
    (B,) -> float64 (B,). A target tied with ``t`` other items gets its expected rank when
    ties are broken at random, ``(items scoring higher) + t / 2``, not the best one (with
    every score equal the target would otherwise rank first)."""
    target = torch.as_tensor(targets)
    target_scores = scores.gather(1, target[:, None])
    higher = (scores > target_scores).sum(1)
    tied_others = (scores == target_scores).sum(1) - 1
    return (higher + tied_others / 2).double().numpy()


def per_user(result: Mapping, metric: str) -> np.ndarray:
    """Per-user values (B,) of ``metric`` (``recall@10``, ``ndcg@5``, ``hit@1``, ...) from a
    result's 0-based target ``ranks`` (negative: not ranked); Hit@k is Recall@k."""
    name, k = metric.split("@")
    ranks = np.array([np.inf if r < 0 else r for r in result["ranks"]], dtype=np.float64)
    recall, ndcg = per_user_from_ranks(ranks, int(k))
    return ndcg if name == "ndcg" else recall


def metrics_from_ranks(ranks: np.ndarray, k: int = 10) -> dict[str, float]:
    """Recall@k and NDCG@k (= 1 / log2(rank + 2) inside the top k) from 0-based ranks (B,)."""
    recall, ndcg = per_user_from_ranks(ranks, k)
    return {f"recall@{k}": float(recall.mean()), f"ndcg@{k}": float(ndcg.mean())}
