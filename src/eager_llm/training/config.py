"""Training configuration of both stages: ``TrainingArguments`` + the EAGER-LLM fields, from YAML.

One file describes a run. Its top level is stage 1 (all tasks + GCT); an optional
``anneal:`` block holds the stage-2 (Annealing Adapter Tuning) values. Stage 2 inherits the
top level except the stage-1-only keys (``output_dir``, ``lora``, ``train_layers``,
``tasks``, GCT weights), then applies :data:`ANNEAL_DEFAULTS`, the block, ``--set`` overrides
and CLI options; it always trains seqrec only, without GCT (:data:`ANNEAL_FIXED`: setting
those keys is an error), and needs its own ``output_dir`` (in the block or from the CLI).
An ``rl:`` block holds stage 3 (GRPO on constrained beams, :mod:`eager_llm.rl.config`),
read the same way (:func:`stage_values`).

Unknown keys are errors naming the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainingArguments

from eager_llm.baselines import SEEN
from eager_llm.decoding import BEAM_SCORES
from eager_llm.indexing.token_init import INITS
from eager_llm.tasks import SEQREC_LABELS, TASKS, templates
from model_zoo.hardware import cpu_bf16
from yaml_config import (
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
from yaml_config.limits import MAX_BEAMS, MAX_ROWS, MAX_TOKENS

from .model import DTYPES, LoraSettings

# Checked (with TRAINING_RANGES) before any data or model is read. max_length is checked
# against the prompt and index lengths once the index is known (training.preflight).
RANGES: dict[str, Range] = {
    **TRAINING_RANGES,
    "max_history": Range(1, MAX_TOKENS, integer=True),
    "prefixes_per_user": Range(1, MAX_ROWS, integer=True),
    "description_words": Range(0, MAX_TOKENS, integer=True),
    "max_length": Range(1, MAX_TOKENS, integer=True),
    "gct_semantic_weight": NON_NEGATIVE,
    "gct_behaviour_weight": NON_NEGATIVE,
    "gct_temperature": POSITIVE,
    "gct_negatives": Range(0, MAX_ROWS, integer=True),
    "valid_users": Range(1, MAX_ROWS, integer=True),
    "valid_seed": Range(0, 2**32 - 1, integer=True),  # None: seed
    "valid_beams": Range(10, MAX_BEAMS, integer=True),
    "index_token_lr": POSITIVE,  # None: learning_rate
    "projector_lr": POSITIVE,
    "train_layers": Range(1, MAX_TOKENS, integer=True),  # None: every layer
}


@dataclass
class EagerConfig(TrainingArguments):
    """``TrainingArguments`` + EAGER-LLM.

    ``model`` is a zoo name, hub id or folder (stage 2: replaced by the stage-1 result),
    loaded in ``model_dtype``; ``index`` an index folder. Samples (:mod:`eager_llm.tasks`):
    ``tasks``, ``template`` (``short`` or ``alpaca``), ``max_history``, ``prefixes_per_user``
    (None: every prefix of every training sequence), ``description_words``, ``seqrec_labels``
    (``last``: the target only, the paper's; ``every``: every history item too, over tiling
    windows, :func:`eager_llm.tasks.seqrec`); rows are cut to ``max_length`` tokens. GCT runs
    when a ``gct_*_weight`` is > 0, with ``gct_negatives`` catalogue items sampled per batch.
    ``lora`` None is full fine-tuning (of the top ``train_layers`` decoder layers and the
    embeddings only, when that is set: :func:`~.model.train_top_layers`), a mapping (``r``,
    ``alpha``, ``dropout``, ``targets``) LoRA; ``merge_lora``: a LoRA run saves ``final/``
    merged into a plain model (else ``final/`` holds the adapter).

    New index tokens start from their items' titles (``index_token_init: title``), from a
    fixed projection of their items' behaviour / semantic embeddings (``embedding``; title
    rows for the collision suffix) or the vocabulary mean (``mean``); their rows learn at
    ``index_token_lr`` and the GCT projectors at ``projector_lr`` (None: ``learning_rate``).
    With ``eval_strategy: steps``, every ``eval_steps`` the model ranks ``valid_users`` fixed
    validation users (drawn with ``valid_seed``; None: the run's ``seed``, so runs of other
    seeds validate on other users unless they set it) with ``valid_beams`` beams
    (``eval_recall@10``, ``eval_ndcg@10`` in metrics.jsonl) under the ``valid_seen``
    protocol (``keep`` or ``remove`` each user's
    training items) and ``valid_beam_scores`` (:data:`eager_llm.decoding.BEAM_SCORES`);
    ``load_best_model_at_end`` then makes ``final/`` the best of them (by
    ``metric_for_best_model``, default ``eval_recall@10``).
    """

    model: str = "tiny-llama"
    model_dtype: str = "float32"
    index: str = ""
    tasks: list[str] = dataclasses.field(default_factory=lambda: list(TASKS))
    template: str = "short"
    max_history: int = 20
    prefixes_per_user: int | None = None
    description_words: int = 50
    seqrec_labels: str = "last"
    max_length: int = 512
    gct_semantic_weight: float = 0.1
    gct_behaviour_weight: float = 0.1
    gct_temperature: float = 0.1
    gct_negatives: int = 2048
    lora: dict[str, Any] | None = None
    train_layers: int | None = None
    merge_lora: bool = True
    index_token_init: str = "title"
    index_token_lr: float | None = None
    projector_lr: float | None = None
    valid_users: int = 500
    valid_seed: int | None = None
    valid_beams: int = 10
    valid_seen: str = "keep"
    valid_beam_scores: str = "vocabulary"

    def __post_init__(self):
        check_ranges(self, RANGES)
        if not isinstance(self.tasks, list) or not self.tasks:
            raise ConfigError(f"'tasks' must be a list of tasks, got {self.tasks!r}", key="tasks")
        if unknown := [task for task in self.tasks if task not in TASKS]:
            raise ConfigError(
                f"unknown task {unknown[0]!r} (known: {', '.join(TASKS)})", key="tasks"
            )
        if self.template not in templates():
            raise ConfigError(f"template must be one of {', '.join(templates())}", key="template")
        if self.seqrec_labels not in SEQREC_LABELS:
            raise ConfigError(
                f"seqrec_labels must be one of {', '.join(SEQREC_LABELS)}", key="seqrec_labels"
            )
        if self.model_dtype not in DTYPES:
            raise ConfigError(f"model_dtype must be one of {', '.join(DTYPES)}", key="model_dtype")
        if self.valid_seen not in SEEN:
            raise ConfigError(f"valid_seen must be one of {', '.join(SEEN)}", key="valid_seen")
        if self.valid_beam_scores not in BEAM_SCORES:
            raise ConfigError(
                f"valid_beam_scores must be one of {', '.join(BEAM_SCORES)}",
                key="valid_beam_scores",
            )
        if self.index_token_init not in INITS:
            raise ConfigError(
                f"index_token_init must be one of {', '.join(INITS)}", key="index_token_init"
            )
        if self.lora is not None:
            check_lora_block(self.lora, [f.name for f in dataclasses.fields(LoraSettings)])
        if self.lora is not None and self.train_layers is not None:
            raise ConfigError("train_layers is for full fine-tuning; set lora or train_layers")
        if self.load_best_model_at_end and self.metric_for_best_model is None:
            self.metric_for_best_model, self.greater_is_better = "eval_recall@10", True
        self.bf16 = cpu_bf16(self.bf16, self.use_cpu)
        _ = self.lora_settings  # validate the nested block before any model is loaded
        self.remove_unused_columns = False  # the collator reads Sample records
        super().__post_init__()

    @property
    def use_gct(self) -> bool:
        return self.gct_semantic_weight > 0 or self.gct_behaviour_weight > 0

    @property
    def lora_settings(self) -> LoraSettings | None:
        if self.lora is None:
            return None
        known = {f.name for f in dataclasses.fields(LoraSettings)}
        if unknown := sorted(set(self.lora) - known):
            raise ConfigError(
                f"unknown key 'lora.{unknown[0]}' (known: {', '.join(sorted(known))})"
            )
        return LoraSettings(**self.lora)


STAGE1_ONLY = (
    "output_dir",
    "lora",
    "train_layers",
    "tasks",
    "gct_semantic_weight",
    "gct_behaviour_weight",
)
ANNEAL_DEFAULTS = {"lora": {}, "lr_scheduler_type": "cosine", "num_train_epochs": 1}
ANNEAL_FIXED = {"tasks": ["seqrec"], "gct_semantic_weight": 0.0, "gct_behaviour_weight": 0.0}


LATER_STAGES = ("anneal", "rl")  # each reads its own block of the file


def stage_values(
    path: str | Path | None,
    stage: str,
    overrides: list[str] = (),
    explicit: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
    fixed: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """(values, source, block) of ``stage`` from a YAML file, ``key=value`` overrides and
    explicit keywords (None values are ignored); ``block``: the keys to check besides
    ``values`` (stage 1: the ``anneal:`` block's). Stage 1 ("train") is the file's top level;
    a later stage (:data:`LATER_STAGES`) inherits it without :data:`STAGE1_ONLY`, then
    applies ``defaults``, its block, the overrides and ``fixed`` (setting a fixed key is an
    error) and needs an ``output_dir``."""
    source = str(path) if path else "<defaults>"
    values = read_mapping(path)
    blocks = {name: values.pop(name, None) or {} for name in LATER_STAGES}
    for name, block in blocks.items():
        if not isinstance(block, dict):
            raise ConfigError(f"{source}: '{name}' must be a mapping of keys to values")
    later = dict(parse_override(item) for item in overrides)
    later.update({k: v for k, v in (explicit or {}).items() if v is not None})
    if stage == "train":  # the anneal block's keys are checked too, before stage 1 runs
        values.update(later)
        return values, source, blocks["anneal"]
    if stage not in LATER_STAGES:
        raise ConfigError(
            f"stage must be 'train' or one of {', '.join(LATER_STAGES)}, got {stage!r}"
        )
    block, fixed = blocks[stage], fixed or {}
    if chosen := [key for key in fixed if key in block or key in later]:
        raise ConfigError(f"{source}: {stage} trains seqrec without GCT; remove '{chosen[0]}'")
    values = {k: v for k, v in values.items() if k not in STAGE1_ONLY}
    values.update(defaults or {})
    values.update(block)
    values.update(later)
    values.update(fixed)
    if "output_dir" not in values:
        raise ConfigError(f"{source}: set {stage}.output_dir or pass --output-dir")
    return values, source, block


def load_config(
    path: str | Path | None,
    stage: str = "train",
    overrides: list[str] = (),
    **explicit: Any,
) -> EagerConfig:
    """The config of ``stage`` ("train" or "anneal") from a YAML file, ``key=value``
    overrides, then explicit keywords (None values are ignored): :func:`stage_values`."""
    if stage not in ("train", "anneal"):
        raise ConfigError(f"stage must be 'train' or 'anneal', got {stage!r}")
    values, source, block = stage_values(
        path, stage, overrides, explicit, ANNEAL_DEFAULTS, ANNEAL_FIXED
    )
    return build_config(EagerConfig, values, source, extra_keys=block)
