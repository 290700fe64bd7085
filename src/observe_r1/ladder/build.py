"""``observe-r1 ladder``: canonical rows in, a NeuraLadder (easy -> hard) JSONL out.

The paper's steps, in order: read and validate rows; keep verifiable answers; drop rows the
model answers correctly with one greedy, answer-only response; score the rest with N sampled
step-by-step responses (difficulty, complexity); sort; drop difficulty-0 rows of low
complexity; flag difficulty-1 rows for review; mix neighbouring levels; sample to size.

Next to ``OUT.jsonl`` it writes ``OUT.stats.json`` (counts removed at each step, the level
profile, bucket own shares, Spearman's rho between intrinsic ``level`` and difficulty, the
scored rows' sampled accuracy per intrinsic level and family, open and choice rows apart,
throughput), ``OUT.png`` (the level profile) and the rollout cache ``OUT.cache/``.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from model_zoo.hardware import PRECISIONS
from observe_r1.data.rows import InputError, check_writable, read_rows, write_rows
from observe_r1.evaluation.evaluate import question_and_gold
from observe_r1.ladder import steps
from observe_r1.ladder.cache import RolloutCache, rollout_key
from observe_r1.ladder.plot import plot_profile
from observe_r1.ladder.rollouts import (
    Completion,
    Messages,
    RolloutEngine,
    Sampling,
    answer_only_messages,
    step_by_step_messages,
)


@dataclass
class LadderConfig:
    """Settings of one build; the defaults are the paper's where it gives them."""

    input: Path
    model: str
    out: Path
    rollouts: int = 8
    size: int | None = None
    seed: int = 0
    batch_size: int = 16  # prompts per generate call (each with `rollouts` responses): 16 x 8
    # rows decode ~1.16x faster than two calls of 8 (benchmarks/ladder_throughput.py)
    max_new_tokens: int = 512
    answer_max_new_tokens: int = 32  # the greedy answer-only response
    temperature: float = 1.0
    own_share: float = 0.6
    spread: int = 2
    easy_quantile: float = 0.25
    easy_min_tokens: float | None = None  # absolute threshold; overrides easy_quantile
    allow_words: bool = False
    greedy_filter: bool = True  # off: score every verifiable row (e.g. to correlate levels)
    skip_invalid: bool = False
    precision: str = "auto"  # fp32 | bf16 (autocast) | auto: bf16 where it pays

    def __post_init__(self):
        self.input, self.out = Path(self.input), Path(self.out)
        for option, value, low in [
            ("--rollouts", self.rollouts, 1),
            ("--batch-size", self.batch_size, 1),
            ("--max-new-tokens", self.max_new_tokens, 1),
            ("answer_max_new_tokens", self.answer_max_new_tokens, 1),
            ("--spread", self.spread, 0),
            ("--size", self.size, 1),
        ]:
            if value is not None and value < low:
                raise InputError(f"{option}: must be at least {low}, got {value}")
        shares = [("--own-share", self.own_share), ("--easy-quantile", self.easy_quantile)]
        for option, value in shares:
            if not 0 <= value <= 1:  # NaN too
                raise InputError(f"{option}: must lie in [0, 1], got {value}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise InputError(f"--temperature: must be a positive number, got {self.temperature}")
        if self.precision not in ("auto", *PRECISIONS):
            raise InputError(f"--precision: must be auto, fp32 or bf16, got {self.precision!r}")
        minimum = self.easy_min_tokens
        if minimum is not None and not (math.isfinite(minimum) and minimum >= 0):
            raise InputError(f"--easy-min-tokens: must be a number >= 0, got {minimum}")

    def check_outputs(self) -> None:
        """Raise `InputError` unless the ladder, its side files and its cache can be written
        (and the ladder would not overwrite the input): before any row is scored."""
        paths = side_paths(self.out)
        if self.out.resolve() == self.input.resolve():
            raise InputError(f"--out {self.out}: is the input file; choose another name")
        check_writable(self.out, "--out")
        check_writable(paths["stats"], "--out's stats file")
        check_writable(paths["plot"], "--out's plot")
        check_writable(paths["cache"], "--out's cache", folder=True)


def side_paths(out: Path) -> dict[str, Path]:
    """The files written next to ``OUT.jsonl``."""
    stem = out.with_suffix("")
    return {
        "stats": stem.with_name(stem.name + ".stats.json"),
        "plot": stem.with_name(stem.name + ".png"),
        "cache": stem.with_name(stem.name + ".cache"),
    }


@dataclass(frozen=True)
class Shard:
    """This process's place in a launch: ``rank`` among ``world`` processes."""

    rank: int = 0
    world: int = 1


def current_shard() -> tuple[Shard, str | None]:
    """This process's shard and device from the launcher's environment (``accelerate
    launch``, ``torchrun``: gloo on CPUs, NCCL on GPUs, ``cuda:<local rank>``); one process
    and the engine's default device when not launched on several."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Shard(), None
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())  # else no CPU process group
    return Shard(state.process_index, state.num_processes), str(state.device)


def _barrier(shard: Shard) -> None:
    if shard.world > 1:
        torch.distributed.barrier()


def _gather(value: Any, shard: Shard) -> list[Any]:
    """Every process's ``value``, in rank order (a collective: all processes call it)."""
    if shard.world == 1:
        return [value]
    from accelerate.utils import gather_object

    return gather_object([value])


@dataclass
class Throughput:
    """Rollouts generated (not read from the cache) and the seconds spent on them."""

    generated: int = 0
    cached: int = 0
    seconds: float = 0.0


def run_pass(
    engine: RolloutEngine,
    cache: RolloutCache,
    rows: list[dict[str, Any]],
    make_messages: Callable[[dict[str, Any]], Messages],
    sampling: Sampling,
    *,
    batch_size: int,
    seed: int,
    label: str,
    throughput: Throughput,
    shard: Shard = Shard(),
) -> list[list[Completion]]:
    """Completions for every row: from the cache, else generated in batches and cached.

    The batches are those of one process (the uncached rows in order, cut every
    ``batch_size``), each seeded from its first key; with several processes each generates
    every ``world``-th batch from its ``rank`` and the completions are gathered, so every
    process ends with all of them and the same batches gave the same samples."""
    messages = [make_messages(row) for row in rows]
    keys = [
        rollout_key(engine.model_id, row, m, sampling)
        for row, m in zip(rows, messages, strict=True)
    ]
    todo = [i for i, key in enumerate(keys) if key not in cache]
    throughput.cached += (len(rows) - len(todo)) * sampling.n
    batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
    mine = batches[shard.rank :: shard.world]
    total = sum(len(batch) for batch in mine) * sampling.n
    with tqdm(total=total, unit="rollout", desc=label, disable=shard.rank != 0) as progress:
        for batch in mine:
            torch.manual_seed(seed ^ int(keys[batch[0]][:8], 16))  # same batch, same samples
            began = time.perf_counter()
            results = engine.generate(
                [messages[i] for i in batch], [rows[i] for i in batch], sampling
            )
            throughput.seconds += time.perf_counter() - began
            for i, completions in zip(batch, results, strict=True):
                cache.put(keys[i], completions)
            throughput.generated += len(batch) * sampling.n
            progress.update(len(batch) * sampling.n)
    if shard.world > 1 and batches:
        generated = {keys[i]: cache.get(keys[i]) for batch in mine for i in batch}
        for rank, part in enumerate(_gather(generated, shard)):
            if rank != shard.rank:
                cache.merge(part, write=shard.rank == 0)
        _barrier(shard)  # the main file holds every part's lines now
        cache.drop_part()
    return [cache.get(key) for key in keys]


def _write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """``write(temporary)`` next to ``path``, then renamed over it: never half a file."""
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")  # suffix: the format
    write(temporary)
    os.replace(temporary, path)


def build_ladder(config: LadderConfig, engine: RolloutEngine | None = None) -> dict[str, Any]:
    """Build the ladder of ``config.input`` into ``config.out``; return the stats written."""
    config.check_outputs()
    loaded = read_rows(config.input, skip_invalid=config.skip_invalid)  # before writing anything
    shard, device = current_shard()
    engine = engine or RolloutEngine(config.model, device=device, precision=config.precision)
    paths = side_paths(config.out)
    if shard.rank == 0:  # the main process repairs a line cut by a kill first
        cache = RolloutCache(paths["cache"])
    _barrier(shard)
    if shard.rank != 0:
        cache = RolloutCache(paths["cache"], rank=shard.rank)
    _barrier(shard)  # every process has read the cache before any writes to it
    throughput = Throughput()
    passes = {
        "batch_size": config.batch_size,
        "seed": config.seed,
        "throughput": throughput,
        "shard": shard,
    }

    rows = [r for r in loaded.rows if steps.verifiable(r, allow_words=config.allow_words)]
    not_verifiable = len(loaded.rows) - len(rows)

    unsolved = rows
    if config.greedy_filter:
        greedy = Sampling(n=1, do_sample=False, max_new_tokens=config.answer_max_new_tokens)
        answers = run_pass(
            engine, cache, rows, answer_only_messages, greedy, label="greedy", **passes
        )
        unsolved = [
            row
            for row, (answer,) in zip(rows, answers, strict=True)
            if not steps.answer_only_correct(answer.text, question_and_gold(row)[1])
        ]

    sampled = Sampling(
        n=config.rollouts,
        do_sample=True,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
    )
    responses = run_pass(
        engine, cache, unsolved, step_by_step_messages, sampled, label="rollouts", **passes
    )
    scored = [
        steps.scored(
            row,
            [steps.response_correct(c.text, question_and_gold(row)[1]) for c in completions],
            [c.tokens for c in completions],
            greedy_correct=False if config.greedy_filter else None,
        )
        for row, completions in zip(unsolved, responses, strict=True)
    ]

    ordered = steps.sort_rows(scored)
    kept, easy_dropped, threshold = steps.drop_easy(
        ordered, quantile=config.easy_quantile, min_tokens=config.easy_min_tokens
    )
    kept = steps.flag_unsolved(kept)
    rng = random.Random(config.seed)
    buckets = steps.mix_levels(kept, rng, own_share=config.own_share, spread=config.spread)
    mixed = [row for bucket in buckets for row in bucket.rows]
    ladder = steps.sample_in_order(mixed, config.size, rng)
    profile = steps.level_profile(ladder, config.rollouts)
    speeds = _gather((throughput.generated, throughput.seconds), shard)
    throughput.generated = sum(generated for generated, _ in speeds)
    throughput.seconds = max(seconds for _, seconds in speeds)  # the processes run side by side
    stats = {
        "input_rows": len(loaded.rows) + loaded.skipped,
        "removed": {
            "invalid": loaded.skipped,
            "not_verifiable": not_verifiable,
            "greedy_correct": len(rows) - len(unsolved),
            "easy_low_complexity": easy_dropped,
            "sampled_out": len(mixed) - len(ladder),
        },
        "scored_rows": len(scored),
        "needs_review": sum(row["needs_review"] for row in ladder),
        "output_rows": len(ladder),
        "easy_threshold_tokens": threshold,
        "spearman_level_difficulty": steps.level_spearman(scored),
        "sampled_accuracy": steps.sampled_accuracy(scored),
        "levels": profile,
        "buckets": [
            {"difficulty_level": b.level, "rows": len(b.rows), "own_share": b.own_share}
            for b in buckets
        ],
        "rollouts": asdict(throughput)
        | {
            "per_second": throughput.generated / throughput.seconds if throughput.seconds else None,
            "generated_by_process": [generated for generated, _ in speeds],
        },
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "processes": shard.world,
        "invalid_rows": loaded.reasons,
    }
    if shard.rank == 0:  # every process holds the same ladder; the main one writes it
        _write_atomic(config.out, lambda path: write_rows(path, ladder))
        _write_atomic(paths["plot"], lambda path: plot_profile(profile, path))
        text = json.dumps(stats, indent=2) + "\n"
        _write_atomic(paths["stats"], lambda path: path.write_text(text))
    _barrier(shard)
    return stats
