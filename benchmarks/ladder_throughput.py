"""Ladder build and greedy evaluation rows/s: today's ``model.generate`` vs shared-prefix
generation (`observe_r1.evaluation.generation`), in one run, on the default model (targets: ladder
>= 3x, greedy evaluation >= 2x).

Rounds alternate the two paths on the same synth rows. The ladder is built end to end
(greedy answer-only pass, then N sampled rollouts of the rows it misses; reading, judging,
caching, mixing, stats and plot) from an empty cache each round, today at
``--batch-size-old`` prompts per call, new at ``--batch-size``. Evaluation answers the
same rows greedily, today at ``--eval-batch-old`` rows per ``generate`` call, new at
``--eval-batch``. The outputs are checked: greedy responses identical row by row, and the
sampled rollouts from the same distribution (response length and correctness compared
between the paths with a permutation test over rows).

    .venv/bin/python benchmarks/ladder_throughput.py [--rows 16] [--eval-rows 64] [--rounds 2]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

from model_zoo.hardware import cpu_model, resolve_precision, torch_uses_avx512
from observe_r1.data.rows import read_rows
from observe_r1.data.synth import STARTER_LEVELS, synthesize
from observe_r1.evaluation.evaluate import generate_responses, question_and_gold
from observe_r1.ladder import steps
from observe_r1.ladder.build import LadderConfig, build_ladder
from observe_r1.ladder.rollouts import RolloutEngine


class RecordingEngine(RolloutEngine):
    """Keeps each sampled batch's (question, tokens, correct) per rollout."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sampled: dict[str, list[tuple[int, bool]]] = {}

    def generate(self, prompts, rows, sampling):
        results = super().generate(prompts, rows, sampling)
        if sampling.n > 1:
            for row, completions in zip(rows, results, strict=True):
                gold = question_and_gold(row)[1]
                self.sampled[row["question"]] = [
                    (c.tokens, steps.response_correct(c.text, gold)) for c in completions
                ]
        return results


def row_means(rollouts: list[tuple[int, bool]]) -> tuple[float, float]:
    """(mean tokens, accuracy) of one row's rollouts."""
    return (
        statistics.fmean(tokens for tokens, _ in rollouts),
        statistics.fmean(float(correct) for _, correct in rollouts),
    )


def sign_flip_p(differences: list[float], draws: int = 5000) -> float:
    """Two-sided p of a mean paired difference of 0 (random sign flips)."""
    observed, rng, extreme = abs(statistics.fmean(differences)), random.Random(0), 0
    for _ in range(draws):
        flipped = [d if rng.random() < 0.5 else -d for d in differences]
        extreme += abs(statistics.fmean(flipped)) >= observed
    return (extreme + 1) / (draws + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smolvlm-dino")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument(
        "--batch-size-old", type=int, default=8, help="today's ladder prompts per call"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="ladder prompts per call")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--eval-rows", type=int, default=64, help="rows of the greedy eval")
    parser.add_argument("--eval-batch-old", type=int, default=8)
    parser.add_argument("--eval-batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--precision", default="fp32", help="the new path's: fp32 | bf16 | auto (today's: fp32)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    new_precision = resolve_precision(args.precision, "cpu")
    engines = {
        True: RecordingEngine(args.model, shared_prefix=False, precision="fp32"),
        False: RecordingEngine(args.model, shared_prefix=True, precision=new_precision),
    }
    for engine in engines.values():
        engine.load()
    ladder_rate = {True: [], False: []}
    eval_rate = {True: [], False: []}
    paired = []  # per round and sampled row: (today, new) mean tokens and accuracy
    greedy = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = synthesize(Path(tmp) / "data", args.rows, seed=3, levels=STARTER_LEVELS)
        rows = read_rows(data).rows
        tests = Path(tmp) / "test"
        synthesize(tests, 1, seed=4, test_n=args.eval_rows, levels=STARTER_LEVELS)
        eval_rows = read_rows(tests / "test.jsonl").rows
        for index in range(args.rounds):
            for old in (True, False) if index % 2 == 0 else (False, True):
                out = Path(tmp) / f"round-{index}-{'old' if old else 'new'}" / "ladder.jsonl"
                config = LadderConfig(
                    input=data,
                    model=args.model,
                    out=out,
                    rollouts=args.rollouts,
                    batch_size=args.batch_size_old if old else args.batch_size,
                    max_new_tokens=args.max_new_tokens,
                    seed=index,
                )
                began = time.perf_counter()
                build_ladder(config, engines[old])
                ladder_rate[old].append(len(rows) / (time.perf_counter() - began))
                engine = engines[old]
                began = time.perf_counter()
                responses = generate_responses(
                    engine.model,
                    engine.processor,
                    eval_rows,
                    max_new_tokens=args.max_new_tokens,
                    batch_size=args.eval_batch_old if old else args.eval_batch,
                    shared_prefix=not old,
                    precision=engine.precision,
                )
                eval_rate[old].append(len(eval_rows) / (time.perf_counter() - began))
                greedy[old] = responses.texts
            today, new = engines[True].sampled, engines[False].sampled
            for question in today.keys() & new.keys():
                paired.append([row_means(runs[question]) for runs in (today, new)])
            today.clear()
            new.clear()
    same = sum(a == b for a, b in zip(greedy[True], greedy[False], strict=True))
    ladder = {old: statistics.median(rates) for old, rates in ladder_rate.items()}
    evals = {old: statistics.median(rates) for old, rates in eval_rate.items()}
    print(
        f"{args.model}, {cpu_model()} (torch kernels {torch.backends.cpu.get_cpu_capability()}"
        f"{'' if torch_uses_avx512() else ', AVX2 emulated or native'}), {args.threads} "
        f"thread(s), today fp32, new {new_precision}; {args.rows} starter rows, ladder batch "
        f"{args.batch_size_old} (today) / {args.batch_size} (new) prompts x "
        f"{args.rollouts} rollouts, greedy eval of {args.eval_rows} rows, <= "
        f"{args.max_new_tokens} new tokens; medians of "
        f"{args.rounds} rounds"
    )
    print(f"  ladder rows/s    today {ladder[True]:.3f}  new {ladder[False]:.3f}  "
          f"ratio {ladder[False] / ladder[True]:.2f}  (target >= 3)")  # fmt: skip
    print(f"  greedy eval rows/s  today (batch {args.eval_batch_old}) {evals[True]:.3f}  new "
          f"(batch {args.eval_batch}) {evals[False]:.3f}  ratio {evals[False] / evals[True]:.2f}"
          "  (target >= 2)")  # fmt: skip
    print(f"  greedy responses identical: {same} of {len(eval_rows)} rows")
    for column, what in enumerate(("tokens", "accuracy")):
        today = [pair[0][column] for pair in paired]
        new = [pair[1][column] for pair in paired]
        differences = [b - a for a, b in zip(today, new, strict=True)]
        print(f"  sampled rollouts, {what} per row ({len(paired)} row-rounds): today "
              f"{statistics.fmean(today):.3f}  new {statistics.fmean(new):.3f}  paired sign-flip "
              f"p = {sign_flip_p(differences):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
