"""Training configuration: TRL's ``GRPOConfig`` plus the Observe-R1 fields, read from YAML.

A YAML file holds any ``GRPOConfig`` / ``TrainingArguments`` key and the fields below;
``lora: {r, alpha, targets, dropout}`` is a nested block. Unknown keys are an error that
names the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trl import GRPOConfig

from yaml_config import ConfigError, build_config, parse_override, read_mapping

__all__ = ["ConfigError", "LoraSettings", "ObserveR1Config", "load_config"]


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: list[str] | str = "all-linear"


@dataclass
class ObserveR1Config(GRPOConfig):
    """``GRPOConfig`` + Observe-R1. Advantages follow ``observe_r1.shaping.shape_advantages``.

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

    def __post_init__(self):
        if self.curriculum not in ("ordered", "shuffled"):
            raise ConfigError(
                f"curriculum must be 'ordered' or 'shuffled', got {self.curriculum!r}"
            )
        if self.response_format not in ("observe", "think"):
            raise ConfigError(
                f"response_format must be 'observe' or 'think', got {self.response_format!r}"
            )
        if self.format_compat not in ("strict", "official"):
            raise ConfigError(
                f"format_compat must be 'strict' or 'official', got {self.format_compat!r}"
            )
        _ = self.lora_settings  # validate the nested block now, not after loading the model
        self.shuffle_dataset = self.curriculum == "shuffled"
        super().__post_init__()
        if (
            self.scale_rewards != "group"
            or self.multi_objective_aggregation != "sum_then_normalize"
        ):
            raise ConfigError(
                "Observe-R1 shaping normalises per group: scale_rewards must be 'group' and "
                "multi_objective_aggregation 'sum_then_normalize'"
            )

    @property
    def lora_settings(self) -> LoraSettings | None:
        if self.lora is None:
            return None
        known = {f.name for f in dataclasses.fields(LoraSettings)}
        unknown = sorted(set(self.lora) - known)
        if unknown:
            raise ConfigError(
                f"unknown key 'lora.{unknown[0]}' (known: {', '.join(sorted(known))})"
            )
        return LoraSettings(**self.lora)


def load_config(
    path: str | Path | None, overrides: list[str] = (), **explicit: Any
) -> ObserveR1Config:
    """Build the config from a YAML file, ``key=value`` overrides, then explicit keywords."""
    source = str(path) if path else "<defaults>"
    values = read_mapping(path)
    values.update(parse_override(item) for item in overrides)
    values.update({k: v for k, v in explicit.items() if v is not None})
    return build_config(ObserveR1Config, values, source)
