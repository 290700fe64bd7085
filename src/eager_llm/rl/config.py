"""Stage 3's configuration: the ``rl:`` block of a run's YAML file -> :class:`RLConfig`.

Stage 3 inherits the file's top level as stage 2 does (:func:`eager_llm.training.config.
stage_values`: without the stage-1-only keys), then :data:`RL_DEFAULTS`, the ``rl:`` block,
``--set`` overrides and CLI options; it always trains a LoRA adapter and never runs GCT
(:data:`RL_FIXED`), and needs its own ``output_dir``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eager_llm.baselines import SEEN
from eager_llm.decoding import BEAM_SCORES
from eager_llm.training.config import ANNEAL_FIXED, ConfigError, EagerConfig, stage_values
from yaml_config import NON_NEGATIVE, Range, build_config, check_ranges
from yaml_config.limits import MAX_BEAMS

from .rewards import RewardWeights

RL_RANGES: dict[str, Range] = {
    "beams": Range(2, MAX_BEAMS, integer=True),  # a group of one has no advantage
    "beta": Range(0, 1e3),
    "epsilon": Range(0, 1, low_open=True),
    "hit_weight": NON_NEGATIVE,
    "rank_weight": NON_NEGATIVE,
    "cooccurrence_weight": NON_NEGATIVE,
}
RL_DEFAULTS = {"lora": {}}  # the rest as the top level (a LoRA adapter, as stage 2)
RL_FIXED = ANNEAL_FIXED


@dataclass
class RLConfig(EagerConfig):
    """:class:`EagerConfig` + stage 3 (GRPO on constrained beams).

    Each training example (a prefix of a training sequence -> its next item) is ranked by
    trie beam search with ``beams`` beams (G) under the ``seen`` protocol (``remove``: never
    an item of its history) and ``beam_scores``; each beam's reward is ``hit_weight * hit +
    rank_weight * rank + cooccurrence_weight * cooc`` (:mod:`eager_llm.rl.rewards`). The
    loss is GRPO's clipped surrogate (``epsilon``) plus ``beta`` times the k3 KL to the
    stage-2 model (:mod:`eager_llm.rl.policy`). ``per_device_train_batch_size`` counts
    examples (each gives ``beams`` sequences).
    """

    beams: int = 8
    beta: float = 0.04
    epsilon: float = 0.2
    hit_weight: float = 1.0
    rank_weight: float = 1.0
    cooccurrence_weight: float = 0.0
    seen: str = "keep"
    beam_scores: str = "vocabulary"

    def __post_init__(self):
        check_ranges(self, RL_RANGES)
        if self.seen not in SEEN:
            raise ConfigError(f"seen must be one of {', '.join(SEEN)}", key="seen")
        if self.beam_scores not in BEAM_SCORES:
            raise ConfigError(
                f"beam_scores must be one of {', '.join(BEAM_SCORES)}", key="beam_scores"
            )
        if self.lora is None:
            raise ConfigError("rl trains a LoRA adapter on the stage-2 model: set 'lora'")
        weights = (self.hit_weight, self.rank_weight, self.cooccurrence_weight)
        if not any(weights):
            raise ConfigError(
                "every reward weight is 0: set hit_weight, rank_weight or cooccurrence_weight",
                key="hit_weight",
            )
        super().__post_init__()

    @property
    def reward_weights(self) -> RewardWeights:
        return RewardWeights(self.hit_weight, self.rank_weight, self.cooccurrence_weight)


def load_rl_config(path: str | Path | None, overrides: list[str] = (), **explicit: Any) -> RLConfig:
    """Stage 3's config from a YAML file (its ``rl:`` block), ``key=value`` overrides, then
    explicit keywords (None values are ignored)."""
    values, source, block = stage_values(path, "rl", overrides, explicit, RL_DEFAULTS, RL_FIXED)
    return build_config(RLConfig, values, source, extra_keys=block)
