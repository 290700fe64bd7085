"""Rewards of stage 3 (GRPO on constrained beams): one group per training example, the
``G`` items the trie beam search returned for its history, best first.

A beam's reward is ``hit_weight * hit + rank_weight * rank + cooccurrence_weight * cooc``:

- ``hit`` (:func:`hit_rewards`): 1 for the beam that is the example's next item, else 0.
- ``rank`` (:func:`rank_penalties`, after MiniOneRec's ranking reward): when the next item
  is among the beams, every other beam is penalised by the NDCG discount of its rank,
  ``-d_i / sum_j d_j`` with ``d_i = 1 / log2(i + 2)`` (0-based rank ``i``, ``j`` over the
  ``G`` ranks), so a wrong item ranked first costs most; the hit, and every beam of a group
  without a hit, get 0. A term that rewarded only the hit by its rank would be wasted:
  with one non-zero reward in a group, GRPO's normalisation gives the same advantages
  whatever its value.
- ``cooc`` (:func:`cooccurrence_rewards`): the first-order Markov baseline's probability
  that the beam's item follows the history's last item in the training sequences
  (:mod:`eager_llm.baselines.markov`), a dense signal when no beam hits.

:func:`group_advantages` turns each group's rewards into GRPO advantages
(:func:`model_zoo.grpo.group_normalise`); groups may be shorter than ``G`` when the seen-item
protocol leaves fewer items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from eager_llm.baselines.markov import MarkovConfig, markov_scores
from model_zoo.grpo import group_normalise

NEXT_ITEM = MarkovConfig(last=1, normalise=True)  # P(item | the history's last item)


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the three terms (module docstring)."""

    hit: float = 1.0
    rank: float = 1.0
    cooccurrence: float = 0.0


def hit_rewards(beams: Sequence[int], target: int) -> Tensor:
    """(G,) float: 1 where the beam's item is ``target``, else 0."""
    return torch.tensor([float(item == target) for item in beams])


def rank_penalties(beams: Sequence[int], target: int, group_size: int | None = None) -> Tensor:
    """(G,) float: ``-d_i / sum_j d_j`` at every non-target beam of rank ``i`` when ``target``
    is among ``beams``, else zeros; ``d_i = 1 / log2(i + 2)``, the sum over ``group_size``
    ranks (default ``len(beams)``; pass the configured ``G`` so that a shorter group is
    penalised on the same scale)."""
    size = len(beams) if group_size is None else group_size
    if target not in beams:
        return torch.zeros(len(beams))
    total = sum(1 / math.log2(rank + 2) for rank in range(size))
    return torch.tensor(
        [0.0 if item == target else -1 / math.log2(rank + 2) / total
         for rank, item in enumerate(beams)]
    )  # fmt: skip


def cooccurrence_rewards(
    transitions: np.ndarray, histories: Sequence[Sequence[int]], beams: Sequence[Sequence[int]]
) -> list[Tensor]:
    """Per example, (G,) float: the probability that each beam's item follows the last item
    of ``histories[i]`` in the training sequences; ``transitions``: (n_items, n_items) counts
    of :func:`eager_llm.baselines.markov.transition_counts`."""
    scores = markov_scores(transitions, histories, NEXT_ITEM)
    return [
        torch.tensor(row[list(items)], dtype=torch.float32)
        for row, items in zip(scores, beams, strict=True)
    ]


def beam_rewards(
    beams: Sequence[Sequence[int]],
    targets: Sequence[int],
    weights: RewardWeights,
    group_size: int,
    cooccurrence: Sequence[Tensor] | None = None,
) -> list[Tensor]:
    """Per example, the (G_i,) rewards of its beams (item positions, best first) for its
    ``target``; ``cooccurrence``: :func:`cooccurrence_rewards` (None: that term is 0)."""
    rewards = []
    for i, (items, target) in enumerate(zip(beams, targets, strict=True)):
        reward = weights.hit * hit_rewards(items, target)
        reward = reward + weights.rank * rank_penalties(items, target, group_size)
        if cooccurrence is not None:
            reward = reward + weights.cooccurrence * cooccurrence[i]
        rewards.append(reward)
    return rewards


def group_advantages(rewards: Sequence[Tensor], eps: float = 1e-6) -> list[Tensor]:
    """GRPO advantages of each group's (G_i,) rewards: ``(r - mean) / (std + eps)``, zeros
    for a group of equal rewards (:func:`model_zoo.grpo.group_normalise`)."""
    return [group_normalise(reward[None], eps)[0] for reward in rewards]
