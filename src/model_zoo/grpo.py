"""GRPO's policy math, written once for both systems: group-normalised advantages, the
clipped surrogate objective and the k3 estimator of the KL divergence to a reference policy.

Observe-R1 shapes its advantages on top of :func:`group_normalise` (TRL computes its loss);
EAGER-LLM's stage 3 (:mod:`eager_llm.rl`) computes its whole loss from these functions.
"""

from __future__ import annotations

import torch
from torch import Tensor


def group_normalise(rewards: Tensor, eps: float = 1e-6, *, scale: bool = True) -> Tensor:
    """GRPO advantages ``(r - mean) / (std + eps)`` per row (``scale=False``: ``r - mean``,
    Dr. GRPO); rows of equal values (including rows of one value) give zeros.

    rewards: (num_groups, G), row ``i`` the rewards of the ``G`` samples of prompt ``i``;
    the std is the unbiased one. Returns the same shape."""
    if rewards.shape[-1] == 1:
        return torch.zeros_like(rewards)
    centred = rewards - rewards.mean(dim=-1, keepdim=True)
    advantages = centred / (rewards.std(dim=-1, keepdim=True) + eps) if scale else centred
    constant = (rewards == rewards[..., :1]).all(dim=-1, keepdim=True)
    return advantages.masked_fill(constant, 0.0)


def clipped_surrogate(
    logps: Tensor, old_logps: Tensor, advantages: Tensor, epsilon: float = 0.2
) -> Tensor:
    """PPO's clipped objective per token, negated to be minimised:
    ``-min(ratio * A, clip(ratio, 1 - epsilon, 1 + epsilon) * A)``, ``ratio = exp(logps -
    old_logps)``.

    logps: (N,) log-probabilities of the sampled tokens under the policy being trained
    (with gradient); old_logps: (N,) under the policy that sampled them; advantages: (N,)
    each token's sequence advantage. Returns (N,). With one update per sample
    (``old_logps = logps.detach()``) the ratio is 1 and the gradient is ``-A * grad logps``.
    """
    ratio = torch.exp(logps - old_logps)
    clipped = ratio.clamp(1 - epsilon, 1 + epsilon)
    return -torch.minimum(ratio * advantages, clipped * advantages)


def k3_kl(logps: Tensor, ref_logps: Tensor) -> Tensor:
    """Schulman's k3 estimator of ``KL(policy || reference)`` per sampled token:
    ``exp(d) - d - 1`` with ``d = ref_logps - logps``; never negative, 0 where the two
    agree. Any shape (both the same)."""
    difference = ref_logps - logps
    return torch.exp(difference) - difference - 1
