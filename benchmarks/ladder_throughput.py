"""Rollouts/s of the NeuraLadder builder vs raw ``model.generate`` (target ratio >= 0.8).

Same model, same synth rows, same batch size and generation settings. The builder is timed
end to end (reading rows, prompts, generation, decoding, judging, cache writes, sorting,
mixing, stats and plot) with an empty cache each round; raw is only the ``model.generate``
calls of the same two passes (greedy answer-only, then N samples per row) on inputs
prepared beforehand. Rounds alternate builder / raw; medians are printed.

    .venv/bin/python benchmarks/ladder_throughput.py [--rows 32] [--rollouts 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from observe_r1.ladder.build import LadderConfig, build_ladder
from observe_r1.ladder.rollouts import (
    RolloutEngine,
    Sampling,
    answer_only_messages,
    step_by_step_messages,
)
from observe_r1.rows import read_rows
from observe_r1.synth import synthesize


def raw_rate(engine: RolloutEngine, rows: list[dict], passes, batch_size: int) -> float:
    """Rollouts/s of bare ``model.generate`` over the same batches as the builder."""
    from PIL import Image

    processor, generated, seconds = engine.processor, 0, 0.0
    for make_messages, sampling in passes:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            texts = [
                processor.apply_chat_template(
                    make_messages(row), add_generation_prompt=True, tokenize=False
                )
                for row in batch
            ]
            images = [Image.open(row["image"]).convert("RGB") for row in batch]
            inputs = processor(text=texts, images=images, padding=True, return_tensors="pt")
            inputs = inputs.to(engine.device)
            began = time.perf_counter()
            with torch.inference_mode():
                engine.model.generate(
                    **inputs,
                    pad_token_id=processor.tokenizer.pad_token_id,
                    **sampling.generate_kwargs(),
                )
            seconds += time.perf_counter() - began
            generated += len(batch) * sampling.n
    return generated / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-qwen2.5-vl")
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    engine = RolloutEngine(args.model)
    engine.load()
    answer_tokens = 32
    passes = [
        (answer_only_messages, Sampling(n=1, do_sample=False, max_new_tokens=answer_tokens)),
        (
            step_by_step_messages,
            Sampling(n=args.rollouts, do_sample=True, max_new_tokens=args.max_new_tokens),
        ),
    ]
    builder_rates, phase_rates, raw_rates = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        data = synthesize(Path(tmp) / "data", args.rows, seed=0)
        rows = read_rows(data).rows
        for index in range(args.rounds):
            config = LadderConfig(
                input=data,
                model=args.model,
                out=Path(tmp) / f"round-{index}" / "ladder.jsonl",
                rollouts=args.rollouts,
                batch_size=args.batch_size,
                max_new_tokens=args.max_new_tokens,
                answer_max_new_tokens=answer_tokens,
            )
            began = time.perf_counter()
            stats = build_ladder(config, engine)
            builder_rates.append(stats["rollouts"]["generated"] / (time.perf_counter() - began))
            phase_rates.append(stats["rollouts"]["per_second"])
            raw_rates.append(raw_rate(engine, rows, passes, args.batch_size))
    builder, phase, raw = map(statistics.median, (builder_rates, phase_rates, raw_rates))
    print(
        f"{args.model} on {engine.device}, {args.threads} thread(s): {args.rows} rows, "
        f"batch {args.batch_size}, 1 greedy + {args.rollouts} sampled rollouts per row, "
        f"<= {args.max_new_tokens} new tokens; medians of {args.rounds} rounds"
    )
    print(f"  raw model.generate          {raw:8.1f} rollouts/s")
    print(f"  builder, generation phase   {phase:8.1f} rollouts/s  (ratio {phase / raw:.3f})")
    print(f"  builder, end to end         {builder:8.1f} rollouts/s  (ratio {builder / raw:.3f})")
    print("  target: ratio >= 0.8")


if __name__ == "__main__":
    main()
