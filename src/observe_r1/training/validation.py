"""Validation during training: every ``eval_steps`` optimizer steps (and before the first
step), greedy accuracy, format rate and mean completion length on the held-out rows of
``eval_file``, scored by :mod:`observe_r1.evaluation.evaluate` (the code of ``observe-r1 eval``).

One record per validation is appended to ``metrics.jsonl``: ``step``, :data:`VALID_KEYS`,
``eval_rows`` and ``seconds``. Each process answers every ``world_size``-th row; the main
process scores them all. Greedy decoding draws no random numbers, and the RNG state is
restored anyway, so a run with validation trains exactly as one without.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import gather_object
from transformers import TrainerCallback

from model_zoo.training_guards import append_record
from observe_r1.data.rows import read_rows
from observe_r1.evaluation.evaluate import Responses, generate_responses, score

VALID_KEYS = ("eval_accuracy", "eval_format_rate", "eval_mean_tokens")


def validation_rows(path: str, limit: int | None, *, skip_invalid: bool = False) -> list[dict]:
    """The first ``limit`` (all when None) valid rows of ``path``, in file order."""
    rows = read_rows(path, skip_invalid=skip_invalid).rows
    return rows[:limit] if limit is not None else rows


def shard(rows: list[Any], rank: int, world_size: int) -> list[Any]:
    """Rows ``rank``, ``rank + world_size``, ... : this process's share."""
    return rows[rank::world_size]


def unshard(parts: list[list[Any]]) -> list[Any]:
    """Inverse of :func:`shard` over all ranks' parts (``parts[r]`` = rank r's share)."""
    merged = [None] * sum(len(part) for part in parts)
    for rank, part in enumerate(parts):
        merged[rank :: len(parts)] = part
    return merged


def validation_record(step: int, metrics: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The ``metrics.jsonl`` line of one validation from
    :func:`observe_r1.evaluation.evaluate.score`."""
    return {
        "step": step,
        "eval_accuracy": metrics["accuracy"],
        "eval_format_rate": metrics["format_rate"],
        "eval_mean_tokens": metrics["mean_tokens"],
        "eval_rows": metrics["rows"],
        "seconds": round(seconds, 3),
    }


class Validation(TrainerCallback):
    """Runs the validation at step 0 of a fresh run and at every ``every``-th optimizer step,
    on all processes (each generates its shard), and writes the record on the main one."""

    def __init__(
        self,
        rows: list[dict],
        path: Path,
        *,
        accelerator,
        processor,
        every: int,
        response_format: str,
        max_new_tokens: int,
        batch_size: int,
    ):
        self.rows, self.path, self.every = rows, Path(path), every
        self.accelerator, self.processor = accelerator, processor
        self.generation = {
            "response_format": response_format,
            "max_new_tokens": max_new_tokens,
            "batch_size": batch_size,
        }

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0:
            self.validate(model, 0)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            self.validate(model, state.global_step)

    def validate(self, model, step: int) -> dict[str, Any] | None:
        """Answer the rows with ``model`` as it is now; the record (main process) or None."""
        started = time.perf_counter()
        accelerator = self.accelerator
        policy = accelerator.unwrap_model(model)
        mine = shard(self.rows, accelerator.process_index, accelerator.num_processes)
        tokenizer = self.processor.tokenizer
        padding_side, was_training = tokenizer.padding_side, policy.training
        devices = [policy.device] if policy.device.type == "cuda" else []
        policy.eval()
        try:
            with torch.random.fork_rng(devices=devices), accelerator.autocast():
                responses = generate_responses(policy, self.processor, mine, **self.generation)
        finally:
            policy.train(was_training)
            tokenizer.padding_side = padding_side
        texts = unshard(gather_object([responses.texts]))
        tokens = unshard(gather_object([responses.tokens]))
        if not accelerator.is_main_process:
            return None
        metrics = score(
            self.rows,
            Responses(texts, tokens),
            response_format=self.generation["response_format"],
        )
        record = validation_record(step, metrics, time.perf_counter() - started)
        append_record(self.path, record)
        return record
