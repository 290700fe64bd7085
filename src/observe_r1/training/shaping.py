"""Observe-R1 group advantage shaping: length bonus and difficulty weighting on top of GRPO.

All tensors are ``(num_groups, G)``: row ``i`` holds the ``G`` sampled responses to prompt ``i``.

1. Bonus (`bonus_mask`): in each group, the single shortest correct response gets ``+bonus`` on
   its raw reward if it is longer than ``bonus_min_length`` tokens (ties: the first one).
2. GRPO normalisation (:func:`model_zoo.grpo.group_normalise`): ``(r - mean) / (std + eps)``
   per group, unbiased std (``scale=False``: ``r - mean``, Dr. GRPO's unscaled advantages);
   a group whose rewards are all equal (including ``G = 1``) gets all-zero advantages.
3. Dynamic weighting (`difficulty_weight`): advantages times ``4 * sigma * p * (1 - p)``, where
   ``p`` is the group's accuracy, so groups that are all right or all wrong teach nothing and
   groups at ``p = 0.5`` weigh ``sigma`` times as much as plain GRPO.
"""

from __future__ import annotations

import torch
from torch import Tensor

from model_zoo.grpo import group_normalise


def difficulty_weight(p: Tensor, sigma: float = 1.8) -> Tensor:
    """``f(p) = 4 * sigma * p * (1 - p)``: 0 at p = 0 and 1, `sigma` at p = 0.5; any shape."""
    return 4 * sigma * p * (1 - p)


def bonus_mask(correct: Tensor, lengths: Tensor, min_length: int) -> Tensor:
    """Bool ``(num_groups, G)``: True at each group's first shortest correct response, if longer
    than `min_length`. Groups without a correct response get no bonus."""
    correct = correct.bool()
    correct_lengths = lengths.double().masked_fill(~correct, float("inf"))
    shortest = correct_lengths.argmin(dim=-1, keepdim=True)  # the first of tied minima
    is_shortest = torch.zeros_like(correct).scatter(-1, shortest, True)
    return is_shortest & correct & (lengths > min_length)


def shape_advantages(
    rewards: Tensor,
    correct: Tensor,
    lengths: Tensor,
    *,
    use_bonus: bool = True,
    bonus: float = 0.2,
    bonus_min_length: int = 100,
    use_dynamic_weight: bool = True,
    sigma: float = 1.8,
    eps: float = 1e-6,
    scale: bool = True,
) -> Tensor:
    """Observe-R1 advantages ``(num_groups, G)`` from raw rewards, correctness and lengths.

    `rewards` ``(num_groups, G)`` float; `correct` same shape, bool or 0/1; `lengths` same
    shape, response lengths in tokens; ``scale``: divide by the group's std (GRPO; False:
    Dr. GRPO). With both switches off this is `group_normalise`.
    """
    if not rewards.shape == correct.shape == lengths.shape or rewards.dim() != 2:
        raise ValueError(
            "rewards, correct and lengths must share one (num_groups, G) shape, got "
            f"{tuple(rewards.shape)}, {tuple(correct.shape)}, {tuple(lengths.shape)}"
        )
    rewards = rewards.to(torch.promote_types(rewards.dtype, torch.float32))
    if use_bonus:
        rewards = rewards + bonus * bonus_mask(correct, lengths, bonus_min_length)
    advantages = group_normalise(rewards, eps, scale=scale)
    if use_dynamic_weight:
        accuracy = correct.to(rewards.dtype).mean(dim=-1, keepdim=True)
        advantages = advantages * difficulty_weight(accuracy, sigma)
    return advantages
