"""Step time of ObserveR1Trainer vs stock TRL GRPOTrainer on the same tiny config.

Same seed, same data, interleaved rounds (stock, ours, stock, ours, ...) so that machine
noise hits both alike; prints the median step time of each and their ratio (target <= 1.05).
The first step of every run (warm-up) is left out.

    .venv/bin/python benchmarks/trainer_overhead.py [--rounds 5] [--steps 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from trl import GRPOTrainer

from observe_r1.demo import draw_counting_rows
from observe_r1.training.config import load_config
from observe_r1.training.train import build_trainer
from observe_r1.training.trainer import ObserveR1Trainer

TINY = Path(__file__).parents[1] / "configs" / "observe_r1" / "tiny.yaml"


def step_seconds(trainer_class, data: Path, out: Path, steps: int) -> list[float]:
    config = load_config(
        TINY,
        [f"train_file={data}", f"output_dir={out}", f"max_steps={steps}", "save_strategy='no'"],
    )
    build_trainer(config, trainer_class).train()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["step_seconds"] for r in records[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = draw_counting_rows(Path(tmp), 2 * args.steps)
        times: dict[str, list[float]] = {"stock": [], "ours": []}
        for round_index in range(args.rounds):
            for name, trainer_class in (("stock", GRPOTrainer), ("ours", ObserveR1Trainer)):
                out = Path(tmp) / f"{name}-{round_index}"
                times[name] += step_seconds(trainer_class, data, out, args.steps)
    stock, ours = (statistics.median(times[k]) for k in ("stock", "ours"))
    print(f"median step time over {len(times['ours'])} steps each (tiny-qwen2.5-vl, CPU)")
    print(f"  stock GRPOTrainer   {stock:.3f} s")
    print(f"  ObserveR1Trainer    {ours:.3f} s")
    print(f"  ratio ours/stock    {ours / stock:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
