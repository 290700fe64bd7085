"""Stage-1 training throughput on SmolLM2-135M, CPU: today's path vs the previous one.

Same config (configs/eager_llm/smol-ml100k.yaml: all tasks + GCT, full fine-tuning), same
seed, hence the same batches in the same order. The two arms:

- ``before``: fp32, random batches and the LM head over every position (the trainer up to
  this change: ``lm(labels=...)`` computes (B, T, V) logits);
- ``now``: the config as it is: length-grouped batches, the LM head only at labelled
  positions (:func:`eager_llm.training.model.labelled_lm_loss`) and ``bf16: true`` (bf16
  autocast with fp32 master weights where the CPU has native bf16, else fp32).

Each round draws ``steps x batch`` random samples of the five tasks and both arms make one
pass over exactly those samples (random batches vs length-grouped ones), so the arms do the
same work; rounds interleave the arms so that machine noise hits both alike. Prints, for
each arm, the median over rounds of seconds per sample in wall-clock and in CPU seconds of
this process (on a shared machine the CPU time is the steadier measure of the work; with
one thread, the default, it is not inflated by threads spinning while they wait for a
core), samples/s by wall clock, and the now/before ratios.

To show how far a faster fp32 path could go, the first round also counts each arm's
floating-point operations per sample (torch's ``FlopCounterMode`` over one forward and
backward of every batch the trainer would draw, padding included), and the script times a
large fp32 matrix product on the same threads: achieved GFLOP per CPU second against that
product's says how much of the CPU's matrix throughput the training step already uses.

The item index is synthetic (MovieLens-100K items, random 4-token codes read as two
behaviour then two semantic levels, random 384-d semantic and 64-d behaviour embeddings),
so it needs no index build: throughput depends on sequence lengths and sizes only.

    .venv/bin/python benchmarks/eager_train.py [--rounds 3] [--steps 4] [--batch 8] [--threads 1]
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
from torch.utils.flop_counter import FlopCounterMode
from transformers import TrainerCallback

from eager_llm.data import load_dataset
from eager_llm.indexing import save_item_index
from eager_llm.training import build_trainer, load_config
from eager_llm.training.stages import SampleDataset
from model_zoo.hardware import cpu_has_native_bf16

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
    stats = {
        "dataset": "movielens-100k",
        "config": {"k_core": 5, "skip_invalid": False},
        "level_sources": ["behaviour", "behaviour", "semantic", "semantic"],
    }
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
    sem, beh, _ = self.gct(hidden, target_items[rows])
    loss = output.loss + self.semantic_weight * sem + self.behaviour_weight * beh
    return {"loss": loss, "lm_loss": output.loss, "gct_sem": sem, "gct_beh": beh}


def pass_flops(trainer) -> int:
    """Floating-point operations of one forward + backward over every batch of the
    trainer's data loader (as it would train on them, padding included)."""
    model = trainer.model.train()
    with FlopCounterMode(display=False) as counter:
        for batch in trainer.get_train_dataloader():
            model(**batch)["loss"].backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Median GFLOP per CPU second of this process of a (size, size) @ (size, size) fp32
    product on the current threads (CPU time, like the arms' GFLOP/s)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    seconds = []
    for _ in range(repeats):
        start = time.process_time()
        a @ b
        seconds.append(time.process_time() - start)
    return 2 * size**3 / statistics.median(seconds) / 1e9


def measure(
    arm: str, index: Path, out: Path, samples: list, batch: int, count_flops: bool = False
) -> tuple[float, float, int | None]:
    """(wall seconds, CPU seconds of this process, FLOPs if ``count_flops``) of one pass over
    ``samples``."""
    overrides = [
        f"max_steps={-(-len(samples) // batch)}",
        f"per_device_train_batch_size={batch}",
        "gradient_accumulation_steps=1",
        "save_strategy='no'",
        "eval_strategy='no'",
        "eval_on_start=false",
        "load_best_model_at_end=false",
        "logging_steps=1",
        "disable_tqdm=true",
    ]
    if arm == "before":
        overrides += ["bf16=false", "train_sampling_strategy='random'"]
    config = load_config(SMOL, "train", overrides, index=str(index), output_dir=str(out))
    trainer = build_trainer(config)
    trainer.train_dataset = SampleDataset(samples)
    if arm == "before":
        trainer.model.forward = types.MethodType(all_positions_forward, trainer.model)
    flops = pass_flops(trainer) if count_flops else None
    times = StepTimes()
    trainer.add_callback(times)
    trainer.train()
    wall, cpu = (sum(step[k] for step in times.seconds) for k in (0, 1))
    return wall, cpu, flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, list[tuple]] = {"before": [], "now": []}
    with tempfile.TemporaryDirectory() as tmp:
        index = synthetic_index(Path(tmp) / "index")
        no_validation = ["eval_strategy='no'", "eval_on_start=false"]
        no_validation += ["load_best_model_at_end=false"]
        config = load_config(SMOL, "train", no_validation,
                             index=str(index), output_dir=str(Path(tmp) / "probe"))  # fmt: skip
        pool = build_trainer(config).train_dataset.samples
        rng = np.random.default_rng(0)
        n = args.steps * args.batch
        for round_index in range(args.rounds):
            samples = [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]
            for name in results:
                out = Path(tmp) / f"{name}-{round_index}"
                first = round_index == 0
                results[name].append(measure(name, index, out, samples, args.batch, first))
        peak = matmul_gflops()
    print(
        f"SmolLM2-135M stage 1 (all tasks + GCT), batch {args.batch}, CPU, {args.threads} "
        f"thread(s); native bf16: {cpu_has_native_bf16()}"
    )
    print(f"{args.rounds} rounds, each one pass of both arms over the same {n} random samples;")
    print("median seconds per sample over rounds")
    medians = {}
    for name, runs in results.items():
        wall, cpu = (statistics.median(run[k] / n for run in runs) for k in (0, 1))
        medians[name] = (wall, cpu)
        flops = runs[0][2] / n
        print(
            f"  {name:6}  {wall:6.2f} s/sample wall  {cpu:6.2f} s/sample CPU  "
            f"{1 / wall:5.2f} samples/s  {flops / 1e9:6.1f} GFLOP/sample (round 1)  "
            f"{flops / cpu / 1e9:5.1f} GFLOP/s of CPU time"
        )
    print(
        f"  fp32 2048x2048 matrix product, {args.threads} thread(s): {peak:.1f} GFLOP/s of CPU time"
    )
    (old_wall, old_cpu), (new_wall, new_cpu) = medians["before"], medians["now"]
    print(
        f"  speed-up now/before (samples/s): wall {old_wall / new_wall:.2f}x, "
        f"CPU {old_cpu / new_cpu:.2f}x"
    )


if __name__ == "__main__":
    main()
