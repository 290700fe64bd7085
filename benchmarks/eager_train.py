"""Stage-1 training throughput on SmolLM2-135M, CPU: today's path vs the previous one.

Same config (configs/eager_llm/smol-ml100k.yaml: all tasks + GCT, full fine-tuning), same
seed, hence the same batches in the same order. The two arms:

- ``before``: fp32, random batches and the LM head over every position (the trainer up to
  this change: ``lm(labels=...)`` computes (B, T, V) logits);
- ``now``: the config as it is: length-grouped batches, the LM head only at labelled
  positions (:func:`eager_llm.training.model.labelled_lm_loss`) and ``bf16: true`` (bf16
  autocast with fp32 master weights where the CPU has native bf16, else fp32).

Runs are interleaved (before, now, before, now, ...) so that machine noise hits both alike.
The first step of every run (warm-up) is left out. Prints, for each, the median step time in
wall-clock and in CPU seconds of this process (on a shared machine the CPU time is the
steadier measure of the work; with one thread, the default, it is not inflated by threads
spinning while they wait for a core), samples/s and tokens/s (non-padding tokens) by wall
clock, and the now/before ratios.

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
import types
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


def all_positions_forward(
    self, input_ids, attention_mask, labels, eos_positions, target_items, gct_rows
):
    """The previous ``EagerLLM.forward``: transformers' loss over (B, T, V) logits."""
    output = self.lm(
        input_ids=input_ids,
        attention_mask=attention_mask,
        labels=labels,
        output_hidden_states=True,
    )
    rows = gct_rows.nonzero().squeeze(1)
    if not len(rows):
        zero = sum(p.sum() for p in self.gct.parameters()) * 0.0
        return {"loss": output.loss + zero, "lm_loss": output.loss}
    hidden = output.hidden_states[-1][rows, eos_positions[rows]]
    sem, beh = self.gct(hidden, target_items[rows])
    loss = output.loss + self.semantic_weight * sem + self.behaviour_weight * beh
    return {"loss": loss, "lm_loss": output.loss, "gct_sem": sem, "gct_beh": beh}


def measure(arm: str, index: Path, out: Path, steps: int, batch: int) -> list[tuple]:
    """(wall seconds, CPU seconds, tokens) of each step after the first."""
    overrides = [
        f"max_steps={steps}",
        f"per_device_train_batch_size={batch}",
        "gradient_accumulation_steps=1",
        "save_strategy='no'",
        "eval_strategy='no'",
        "load_best_model_at_end=false",
        "logging_steps=1",
        "disable_tqdm=true",
    ]
    if arm == "before":
        overrides += ["bf16=false", "train_sampling_strategy='random'"]
    config = load_config(SMOL, "train", overrides, index=str(index), output_dir=str(out))
    trainer = build_trainer(config)
    if arm == "before":
        trainer.model.forward = types.MethodType(all_positions_forward, trainer.model)
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
    results: dict[str, list[tuple]] = {"before": [], "now": []}
    with tempfile.TemporaryDirectory() as tmp:
        index = synthetic_index(Path(tmp) / "index")
        for round_index in range(args.rounds):
            for name in results:
                out = Path(tmp) / f"{name}-{round_index}"
                results[name] += measure(name, index, out, args.steps, args.batch)
    print(
        f"SmolLM2-135M stage 1 (all tasks + GCT), batch {args.batch}, CPU, {args.threads} thread(s)"
    )
    print(f"median over {len(results['now'])} steps each (first step of each run left out)")
    medians = {}
    for name, steps in results.items():
        wall, cpu = (statistics.median(step[k] for step in steps) for k in (0, 1))
        tokens = statistics.median(t / w for w, _, t in steps)
        medians[name] = (wall, cpu)
        print(
            f"  {name:6}  {wall:6.2f} s/step wall  {cpu:6.2f} s/step CPU  "
            f"{args.batch / wall:5.2f} samples/s  {tokens:6.1f} tokens/s"
        )
    (old_wall, old_cpu), (new_wall, new_cpu) = medians["before"], medians["now"]
    print(
        f"  speed-up now/before (samples/s): wall {old_wall / new_wall:.2f}x, "
        f"CPU {old_cpu / new_cpu:.2f}x"
    )


if __name__ == "__main__":
    main()
