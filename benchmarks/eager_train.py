"""Stage-1 training throughput on SmolLM2-135M: full fine-tuning vs LoRA, CPU.

Same config (configs/eager_llm/smol-ml100k.yaml: all tasks + GCT), same seed, hence the
same batches in the same order; only ``lora`` differs (LoRA r 8 on attention + MLP, index
token rows trainable). Runs are interleaved (full, lora, full, lora, ...) so that machine
noise hits both alike. The first step of every run (warm-up) is left out. Prints, for each,
the median step time in wall-clock and in CPU seconds of this process (on a shared machine
the CPU time is the steadier measure of the work; with one thread, the default, it is not
inflated by threads spinning while they wait for a core), samples/s and tokens/s
(non-padding tokens) by wall clock, and the LoRA/full ratios.

The item index is synthetic (MovieLens-100K items, random 4-token codes, random 384-d
semantic and 64-d behaviour embeddings), so it needs no index build: throughput depends
on sequence lengths and sizes only.

    .venv/bin/python benchmarks/eager_train.py [--rounds 2] [--steps 3] [--batch 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

from eager_llm.data import load_dataset
from eager_llm.indexing import save_item_index
from eager_llm.training import build_trainer, load_config

SMOL = Path(__file__).parents[1] / "configs" / "eager_llm" / "smol-ml100k.yaml"


def synthetic_index(folder: Path) -> Path:
    interactions, _ = load_dataset("movielens-100k")
    item_ids = interactions.item_ids.tolist()
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(len(item_ids), 4))
    codes[:, 3] = np.arange(len(item_ids)) % 256  # unique indices
    codes[:, 2] = np.arange(len(item_ids)) // 256
    families = "abcd"
    index = {
        item_id: [f"<{families[level]}_{value}>" for level, value in enumerate(row)]
        for item_id, row in zip(item_ids, codes, strict=True)
    }
    folder.mkdir(parents=True)
    save_item_index(index, folder / "item_index.json")
    (folder / "items.json").write_text(json.dumps(item_ids))
    np.save(folder / "semantic_embeddings.npy", rng.normal(size=(len(item_ids), 384)))
    np.save(folder / "behaviour_embeddings.npy", rng.normal(size=(len(item_ids), 64)))
    stats = {"dataset": "movielens-100k", "config": {"k_core": 5, "skip_invalid": False}}
    (folder / "index_stats.json").write_text(json.dumps(stats))
    return folder


class StepTimes(TrainerCallback):
    """(wall seconds, CPU seconds of this process) of every optimizer step."""

    def __init__(self):
        self.seconds: list[tuple[float, float]] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = (time.perf_counter(), time.process_time())

    def on_step_end(self, args, state, control, **kwargs):
        wall, cpu = self._started
        self.seconds.append((time.perf_counter() - wall, time.process_time() - cpu))


class CountingCollator:
    """The trainer's collator, recording the non-padding tokens of every batch."""

    def __init__(self, collator):
        self.collator = collator
        self.tokens: list[int] = []

    def __call__(self, samples):
        batch = self.collator(samples)
        self.tokens.append(int(batch["attention_mask"].sum()))
        return batch


def measure(lora: bool, index: Path, out: Path, steps: int, batch: int) -> list[tuple]:
    """(wall seconds, CPU seconds, tokens) of each step after the first."""
    overrides = [
        f"max_steps={steps}",
        f"per_device_train_batch_size={batch}",
        "gradient_accumulation_steps=1",
        "save_strategy='no'",
        "logging_steps=1",
        "disable_tqdm=true",
    ]
    if lora:
        overrides.append("lora={r: 8, alpha: 32, dropout: 0.05}")
    config = load_config(SMOL, "train", overrides, index=str(index), output_dir=str(out))
    trainer = build_trainer(config)
    times, counter = StepTimes(), CountingCollator(trainer.data_collator)
    trainer.add_callback(times)
    trainer.data_collator = counter
    trainer.train()
    return [(*s, t) for s, t in zip(times.seconds, counter.tokens, strict=False)][1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, list[tuple]] = {"full": [], "lora": []}
    with tempfile.TemporaryDirectory() as tmp:
        index = synthetic_index(Path(tmp) / "index")
        for round_index in range(args.rounds):
            for name in results:
                out = Path(tmp) / f"{name}-{round_index}"
                results[name] += measure(name == "lora", index, out, args.steps, args.batch)
    print(
        f"SmolLM2-135M stage 1 (all tasks + GCT), batch {args.batch}, CPU, {args.threads} thread(s)"
    )
    print(f"median over {len(results['full'])} steps each (first step of each run left out)")
    medians = {}
    for name, steps in results.items():
        wall, cpu = (statistics.median(step[k] for step in steps) for k in (0, 1))
        tokens = statistics.median(t / w for w, _, t in steps)
        medians[name] = (wall, cpu)
        print(
            f"  {name:4}  {wall:6.2f} s/step wall  {cpu:6.2f} s/step CPU  "
            f"{args.batch / wall:5.2f} samples/s  {tokens:6.1f} tokens/s"
        )
    (full_wall, full_cpu), (lora_wall, lora_cpu) = medians["full"], medians["lora"]
    wall_ratio, cpu_ratio = lora_wall / full_wall, lora_cpu / full_cpu
    print(f"  step time ratio lora/full: wall {wall_ratio:.3f}, CPU {cpu_ratio:.3f}")


if __name__ == "__main__":
    main()
