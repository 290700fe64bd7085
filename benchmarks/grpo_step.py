"""GRPO step time of the default model: today's ``smol.yaml`` vs ``smol-cpu.yaml``, one run.

Same model (smolvlm-dino), same synth rows (levels 1-5, seed 0) and seed for every arm.
Each config reads every row as many times in a row as it has prompts per step, so that step
k of any arm samples 8 completions of the same question k (today: 2 copies x 4, new: 1 x 8)
and only the sampling differs. The arms: today's ``smol.yaml`` (fp32), ``smol-cpu.yaml`` in
fp32 and, where the CPU has native bf16 units, with bf16 autocast (fp32 master weights), both
with TRL's loss forward over G prompt copies, and ``smol-cpu.yaml`` as shipped (bf16 where
native, each group's prompt run once: ``share_prompt_forward``). They run interleaved, each
round a fresh trainer of ``--steps`` optimizer steps, so that machine noise hits all alike.
Prints the median step time of each (``step_seconds`` of ``metrics.jsonl``), completions per
second and the ratio today / arm;
all make 8 completions per step, so the ratio is also that of completions per second.
``--warmup`` steps at the start of every run are left out (default 1; a step of the default
model takes tens of seconds, so ``--warmup 0`` with few steps is a fair short measurement).
Threads: torch's default, or ``OMP_NUM_THREADS``; printed.

    .venv/bin/python benchmarks/grpo_step.py [--rounds 2] [--steps 3] [--warmup 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from model_zoo.hardware import cpu_has_native_bf16
from observe_r1.data.synth import synthesize
from observe_r1.training.config import load_config
from observe_r1.training.train import build_trainer

CONFIGS = Path(__file__).parents[1] / "configs" / "observe_r1"
# name -> (config, overrides); the first is today's default, the others are timed against it.
RUNS = {
    "today (smol.yaml)": (CONFIGS / "smol.yaml", ["bf16=false"]),
    "new fp32, prompt x G": (
        CONFIGS / "smol-cpu.yaml",
        ["bf16=false", "share_prompt_forward=false"],
    ),
}
if cpu_has_native_bf16():
    RUNS["new bf16, prompt x G"] = (
        CONFIGS / "smol-cpu.yaml",
        ["bf16=true", "share_prompt_forward=false"],
    )
RUNS["new as shipped"] = (CONFIGS / "smol-cpu.yaml", [])  # bf16 where native, prompt once


def step_seconds(
    config_path: Path, extra: list[str], data: Path, out: Path, steps: int, model: str
) -> list[dict]:
    """One fresh run of ``steps`` optimizer steps: its ``metrics.jsonl`` records."""
    overrides = [
        *extra,
        f"model={model}",
        f"train_file={data}",
        f"output_dir={out}",
        f"max_steps={steps}",
        "save_strategy='no'",
        "seed=0",
    ]
    build_trainer(load_config(config_path, overrides)).train()
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def repeated_rows(rows: Path, copies: int) -> Path:
    """``rows`` with each row written `copies` times in a row (ids ``...-0``, ``...-1``, ...;
    images shared), next to it."""
    lines = []
    for line in rows.read_text().splitlines():
        row = json.loads(line)
        lines += [json.dumps(row | {"id": f"{row['id']}-{copy}"}) for copy in range(copies)]
    out = rows.with_name(f"rows-x{copies}.jsonl")
    out.write_text("\n".join(lines) + "\n")
    return out


def prompts_per_step(config_path: Path) -> int:
    config = load_config(config_path, ["output_dir=/tmp/unused"])
    return config.per_device_train_batch_size // config.num_generations


def completions_per_step(config_path: Path) -> int:
    config = load_config(config_path, ["output_dir=/tmp/unused"])
    return config.per_device_train_batch_size * config.gradient_accumulation_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="Steps left out per run.")
    parser.add_argument("--model", default="smolvlm-dino")
    args = parser.parse_args()
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")
    began = time.perf_counter()
    times: dict[str, list[float]] = {name: [] for name in RUNS}
    lengths: dict[str, list[float]] = {name: [] for name in RUNS}
    with tempfile.TemporaryDirectory() as tmp:
        rows = synthesize(Path(tmp) / "data", args.steps, seed=0)
        data = {
            name: repeated_rows(rows, prompts_per_step(path)) for name, (path, _) in RUNS.items()
        }
        for round_index in range(args.rounds):
            for index, (name, (path, extra)) in enumerate(RUNS.items()):
                out = Path(tmp) / f"run-{round_index}-{index}"
                records = step_seconds(path, extra, data[name], out, args.steps, args.model)
                records = records[args.warmup :]
                times[name] += [r["step_seconds"] for r in records]
                lengths[name] += [r["completion_length_mean"] for r in records]
                print(f"round {round_index} {name}: " + ", ".join(f"{t:.1f}" for t in times[name]))
    medians = {name: statistics.median(values) for name, values in times.items()}
    today = next(iter(medians.values()))
    print(
        f"\nmedian GRPO step time, {args.model}, {torch.get_num_threads()} torch thread(s), "
        f"{len(times[next(iter(RUNS))])} steps each ({args.rounds} rounds x "
        f"{args.steps - args.warmup} measured steps), {time.perf_counter() - began:.0f} s in all"
    )
    for name, (path, _) in RUNS.items():
        n = completions_per_step(path)
        mean_length = statistics.mean(lengths[name])
        print(
            f"  {name:22s} {medians[name]:7.1f} s   {n / medians[name]:.3f} completions/s   "
            f"mean completion {mean_length:.0f} tokens   ratio today / this "
            f"{today / medians[name]:.2f}x"
        )


if __name__ == "__main__":
    main()
