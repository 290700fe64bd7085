"""EAGER-LLM stage 3 (beyond the paper): GRPO on trie-constrained beams, after MiniOneRec.

Modules: ``rewards`` (hit, ranking and co-occurrence rewards, group advantages; pure),
``config`` (the ``rl:`` block -> :class:`RLConfig`), ``policy`` (the LoRA policy and its
loss: clipped surrogate + KL to the adapter-free stage-2 model), ``trainer``
(:class:`RLTrainer`: rollouts by beam search, then the loss), ``stage`` (one run: config ->
files). The GRPO math itself is :mod:`model_zoo.grpo`.
"""

from .config import RLConfig, load_rl_config
from .rewards import RewardWeights, beam_rewards, group_advantages, rank_penalties
from .stage import build_rl_trainer, run_rl

__all__ = [
    "RLConfig",
    "RewardWeights",
    "beam_rewards",
    "build_rl_trainer",
    "group_advantages",
    "load_rl_config",
    "rank_penalties",
    "run_rl",
]
