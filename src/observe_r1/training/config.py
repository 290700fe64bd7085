"""Training configuration: TRL's ``GRPOConfig`` plus the Observe-R1 fields, read from YAML.

A YAML file holds any ``GRPOConfig`` / ``TrainingArguments`` key and the fields below;
``lora: {r, alpha, targets, dropout}`` is a nested block. Unknown keys are an error that
names the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trl import GRPOConfig

from model_zoo.hardware import cpu_bf16
from observe_r1.training.group_filter import DROP_RULES
from yaml_config import (
    AT_LEAST_1,
    BATCH,
    NON_NEGATIVE,
    POSITIVE,
    TRAINING_RANGES,
    ConfigError,
    Range,
    build_config,
    check_lora_block,
    check_ranges,
    parse_override,
    read_mapping,
)
from yaml_config.limits import MAX_BATCH, MAX_PIXELS, MAX_TEMPERATURE, MAX_TOKENS

# TRL's GRPOConfig sets the old name; transformers warns on every config built. Not ours to fix.
warnings.filterwarnings(
    "ignore", message="`gradient_checkpointing` is deprecated", category=FutureWarning
)

__all__ = [
    "ConfigError",
    "LoraSettings",
    "ObserveR1Config",
    "RolloutShape",
    "load_config",
    "rollout_shape",
]


# TRL 1.16's GRPO losses (GRPOTrainer._compute_loss); it would reject another name only at
# the first loss. dapo: TRL's default; bnpo: the paper config's (LMM-R1's token mean).
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo")


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: list[str] | str = "all-linear"


# Checked (with TRAINING_RANGES) before TRL's own __post_init__, which divides by some.
RANGES: dict[str, Range] = {
    **TRAINING_RANGES,
    "num_generations": Range(2, MAX_BATCH, integer=True),
    "max_completion_length": Range(1, MAX_TOKENS, integer=True),
    "generation_batch_size": BATCH,
    "steps_per_generation": BATCH,
    "num_iterations": Range(1, 1_000, integer=True),
    "temperature": Range(0, MAX_TEMPERATURE, low_open=True),
    "top_p": Range(0, 1, low_open=True),
    "top_k": Range(0, integer=True),
    "beta": NON_NEGATIVE,
    "epsilon": POSITIVE,
    "format_value": Range(),
    "bonus": NON_NEGATIVE,
    "bonus_min_length": Range(0, MAX_TOKENS, integer=True),
    "sigma": POSITIVE,
    "advantage_eps": POSITIVE,
    "eval_limit": AT_LEAST_1,
    "max_refill_rounds": Range(0, 1_000, integer=True),
    "min_pixels": Range(1, MAX_PIXELS, integer=True),
    "max_pixels": Range(1, MAX_PIXELS, integer=True),
}


@dataclass
class ObserveR1Config(GRPOConfig):
    """``GRPOConfig`` + Observe-R1. Advantages follow
    ``observe_r1.training.shaping.shape_advantages``.

    ``advantage_eps`` defaults to TRL's 1e-4 so that with both switches off the advantages
    equal stock GRPO's exactly.
    """

    model: str = "tiny-qwen2.5-vl"
    train_file: str = ""
    curriculum: str = "ordered"  # ordered: ladder file order; shuffled: the ablation
    response_format: str = "observe"  # observe: <observe><think><answer>; think: baseline
    format_compat: str = "strict"  # strict | official (public code's regex)
    format_value: float = 0.5
    use_bonus: bool = True
    bonus: float = 0.2
    bonus_min_length: int = 100
    use_dynamic_weight: bool = True
    sigma: float = 1.8
    advantage_eps: float = 1e-4
    skip_invalid: bool = False
    lora: dict[str, Any] | None = None
    # Qwen-VL dynamic resolution: every image is resized to within [min, max] pixels (None:
    # the processor's own bounds). Applied to the images themselves, so vLLM sees them too.
    min_pixels: int | None = None
    max_pixels: int | None = None
    # Validation during training (observe_r1.training.validation): greedy on the first eval_limit
    # rows of eval_file (all when null), every eval_steps optimizer steps (null: logging_steps).
    eval_file: str = ""
    eval_limit: int | None = None
    # Dynamic sampling (DAPO; observe_r1.training.group_filter): groups meeting any of these rules
    # (all_correct, all_wrong, zero_variance) are replaced by the ladder's next prompts, for
    # at most max_refill_rounds extra generation passes per round. []: off (the paper).
    filter_groups: list[str] = field(default_factory=list)
    max_refill_rounds: int = 4
    # Keep the vision encoder's weights fixed (and LoRA off it); the projector still trains
    # where it lies outside the encoder (LLaVA), not where it is part of it (Qwen-VL's merger).
    freeze_vision: bool = False
    # Run each group's prompt once in the loss forward (observe_r1.training.shared_prompt): the same
    # log-probabilities and gradients as TRL's forward over G prompt copies, for less compute
    # when prompts are long against completions. LLaVA and text models (1-D positions) only.
    share_prompt_forward: bool = False
    # Write each completion's text into rollouts.jsonl ("text"): what a collapsing run
    # says, read without re-generating. Off by default: a GPU run's file would hold GBs.
    rollout_texts: bool = False

    def __post_init__(self):
        check_ranges(self, RANGES)
        self._check_validation()
        self._check_filter_groups()
        if self.curriculum not in ("ordered", "shuffled"):
            raise ConfigError(
                f"curriculum must be 'ordered' or 'shuffled', got {self.curriculum!r}",
                key="curriculum",
            )
        if self.response_format not in ("observe", "think"):
            raise ConfigError(
                f"response_format must be 'observe' or 'think', got {self.response_format!r}",
                key="response_format",
            )
        if self.format_compat not in ("strict", "official"):
            raise ConfigError(
                f"format_compat must be 'strict' or 'official', got {self.format_compat!r}",
                key="format_compat",
            )
        _ = self.lora_settings  # validate the nested block now, not after loading the model
        if None not in (self.min_pixels, self.max_pixels) and self.min_pixels > self.max_pixels:
            raise ConfigError(
                f"min_pixels ({self.min_pixels}) exceeds max_pixels ({self.max_pixels})"
            )
        if self.loss_type not in LOSS_TYPES:
            raise ConfigError(
                f"loss_type must be one of {', '.join(LOSS_TYPES)} (TRL's GRPO losses), "
                f"got {self.loss_type!r}",
                key="loss_type",
            )
        self.shuffle_dataset = self.curriculum == "shuffled"
        self.bf16 = cpu_bf16(self.bf16, self.use_cpu)
        super().__post_init__()
        per_device = self.per_device_train_batch_size * self.steps_per_generation
        if self.filter_groups and per_device % self.num_generations:
            raise ConfigError(
                f"filter_groups keeps or drops whole groups on each process: a process's "
                f"{per_device} completions per round (per_device_train_batch_size x "
                f"steps_per_generation) must be whole groups of num_generations "
                f"({self.num_generations})",
                key="filter_groups",
            )
        if self.share_prompt_forward and self.gradient_checkpointing:
            raise ConfigError(
                "share_prompt_forward reuses the prompt's key/value cache, which gradient "
                "checkpointing turns off: set gradient_checkpointing false (or "
                "share_prompt_forward false)",
                key="share_prompt_forward",
            )
        if self.scale_rewards not in ("group", "none"):
            raise ConfigError(
                "Observe-R1 shaping centres each group: scale_rewards must be 'group' (divide "
                f"by the group's std, GRPO) or 'none' (Dr. GRPO), got {self.scale_rewards!r}",
                key="scale_rewards",
            )
        if self.multi_objective_aggregation != "sum_then_normalize":
            raise ConfigError(
                "Observe-R1 shaping normalises the summed reward: multi_objective_aggregation "
                f"must be 'sum_then_normalize', got {self.multi_objective_aggregation!r}",
                key="multi_objective_aggregation",
            )

    def _check_validation(self) -> None:
        if not self.eval_file:
            return
        if self.eval_strategy != "no":
            raise ConfigError(
                "eval_file runs Observe-R1's own validation: leave eval_strategy at 'no' "
                f"(got {self.eval_strategy!r}; TRL's evaluation loop needs an eval_dataset)",
                key="eval_strategy",
            )
        if self.eval_steps is None:
            self.eval_steps = self.logging_steps
        if not AT_LEAST_1.admits(self.eval_steps):
            raise ConfigError(
                f"'eval_steps' must be a whole number of optimizer steps >= 1 with eval_file, "
                f"got {self.eval_steps!r}",
                key="eval_steps",
            )
        self.eval_steps = int(self.eval_steps)

    def _check_filter_groups(self) -> None:
        rules = self.filter_groups
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            raise ConfigError(
                f"filter_groups must be a list of rules (of {', '.join(DROP_RULES)}), "
                f"got {rules!r}",
                key="filter_groups",
            )
        if unknown := sorted(set(rules) - set(DROP_RULES)):
            raise ConfigError(
                f"filter_groups: unknown rule {unknown[0]!r} (known: {', '.join(DROP_RULES)})",
                key="filter_groups",
            )

    @property
    def lora_settings(self) -> LoraSettings | None:
        if self.lora is None:
            return None
        check_lora_block(self.lora, [f.name for f in dataclasses.fields(LoraSettings)])
        return LoraSettings(**self.lora)


@dataclass(frozen=True)
class RolloutShape:
    """How one run's batches nest, counted the way the paper counts them."""

    prompts_per_rollout: int
    completions_per_rollout: int
    micro_batch_per_device: int
    completions_per_optimizer_step: int
    optimizer_steps_per_rollout: int
    rollouts_per_epoch: int
    optimizer_steps_per_epoch: int


def rollout_shape(config: ObserveR1Config, num_processes: int, num_prompts: int) -> RolloutShape:
    """The rollout / update sizes ``config`` gives on ``num_processes`` devices.

    TRL's terms: a rollout ("generation round") is ``per_device_train_batch_size x
    num_processes x steps_per_generation`` completions, consumed in ``steps_per_generation
    x num_iterations`` micro-steps; ``gradient_accumulation_steps`` micro-steps make one
    optimizer step. ``steps_per_generation`` is read as set (the YAML sets it, so that the
    round does not depend on the number of processes). An epoch is the full rollouts of
    ``num_prompts`` (TRL's sampler drops a last partial one)."""
    per_step = config.per_device_train_batch_size * num_processes
    completions = per_step * config.steps_per_generation
    micro_steps = config.steps_per_generation * config.num_iterations
    if micro_steps % config.gradient_accumulation_steps:
        raise ConfigError(
            f"steps_per_generation x num_iterations ({micro_steps}) is not a multiple of "
            f"gradient_accumulation_steps ({config.gradient_accumulation_steps}): optimizer "
            "steps would straddle generation rounds"
        )
    if completions % config.num_generations:
        raise ConfigError(
            f"a rollout of {completions} completions is not whole groups of "
            f"num_generations ({config.num_generations})"
        )
    prompts = completions // config.num_generations
    steps_per_rollout = micro_steps // config.gradient_accumulation_steps
    rollouts = num_prompts // prompts
    return RolloutShape(
        prompts_per_rollout=prompts,
        completions_per_rollout=completions,
        micro_batch_per_device=config.per_device_train_batch_size,
        completions_per_optimizer_step=per_step * config.gradient_accumulation_steps,
        optimizer_steps_per_rollout=steps_per_rollout,
        rollouts_per_epoch=rollouts,
        optimizer_steps_per_epoch=rollouts * steps_per_rollout,
    )


def load_config(
    path: str | Path | None, overrides: list[str] = (), **explicit: Any
) -> ObserveR1Config:
    """Build the config from a YAML file, ``key=value`` overrides, then explicit keywords."""
    source = str(path) if path else "<defaults>"
    values = read_mapping(path)
    values.update(parse_override(item) for item in overrides)
    values.update({k: v for k, v in explicit.items() if v is not None})
    return build_config(ObserveR1Config, values, source)
