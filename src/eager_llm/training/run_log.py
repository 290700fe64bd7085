"""``metrics.jsonl``, ``validation_ranks.jsonl`` and ``loss_curve.png`` next to a training
run."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
from transformers import TrainerCallback

from model_zoo.training_guards import append_record, read_records

KEYS = ("loss", "lm_loss", "gct_sem", "gct_beh", "learning_rate")
VALID_KEYS = ("eval_recall@10", "eval_ndcg@10")
VALIDATION_RANKS = "validation_ranks.jsonl"


def append_validation_ranks(folder: str | Path, step: int, ranks) -> None:
    """One line ``{"step", "ranks"}`` in ``folder/validation_ranks.jsonl``: every validation
    user's 0-based target rank (None: not among the decoded items), in user order, so two
    points of the learning curve can be compared user by user."""
    ranks = [None if math.isinf(rank) else int(rank) for rank in ranks]
    with (Path(folder) / VALIDATION_RANKS).open("a") as handle:
        handle.write(json.dumps({"step": step, "ranks": ranks}) + "\n")


def read_validation_ranks(folder: str | Path) -> dict[int, np.ndarray]:
    """Step -> ranks (float array (n_users,), ``inf`` absent) from
    :func:`append_validation_ranks`' file; a step logged twice (a resumed run) keeps its
    last line."""
    found = {}
    for line in (Path(folder) / VALIDATION_RANKS).read_text().splitlines():
        record = json.loads(line)
        found[record["step"]] = np.array(
            [np.inf if rank is None else rank for rank in record["ranks"]], dtype=np.float64
        )
    return found


class MetricsFile(TrainerCallback):
    """Appends one JSON object per logging step to ``path`` (main process only): step,
    samples seen, ``keys`` (default :data:`KEYS`; None when absent, e.g. GCT in stage 2) and
    samples_per_second since the previous record (or since training, or its resumption,
    began); and one per validation: step, samples, :data:`VALID_KEYS`, seconds."""

    def __init__(self, path: Path, keys: tuple[str, ...] = KEYS):
        self.path = Path(path)
        self.keys = keys
        self._since = (0, time.perf_counter())
        self._evaluation_started = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self._since = (state.global_step, time.perf_counter())

    def _write(self, record: dict) -> None:
        append_record(self.path, record)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if state.is_world_process_zero and metrics and VALID_KEYS[0] in metrics:
            step, started = self._since
            record = {"step": state.global_step, "samples": _samples(args, state.global_step)}
            record.update({key: metrics.get(key) for key in VALID_KEYS})
            record["seconds"] = round(time.perf_counter() - self._evaluation_started, 1)
            self._write(record)
            self._since = (step, started + time.perf_counter() - self._evaluation_started)

    def on_step_end(self, args, state, control, **kwargs):
        self._evaluation_started = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        step, started = self._since
        now = time.perf_counter()
        samples = _samples(args, state.global_step - step)
        record = {"step": state.global_step, "samples": _samples(args, state.global_step)}
        record.update({key: logs.get(key) for key in self.keys})
        record["samples_per_second"] = round(samples / (now - started), 3)
        self._since = (state.global_step, now)
        self._write(record)


def _samples(args, steps: int) -> int:
    """Training samples in ``steps`` optimizer steps (all processes)."""
    return (
        steps
        * args.per_device_train_batch_size
        * args.gradient_accumulation_steps
        * args.world_size
    )


def plot_loss_curve(metrics_path: Path, out: Path, title: str) -> None:
    """Total and (when logged) LM loss per step; the GCT losses in a second panel when
    present."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in read_records(metrics_path) if "loss" in r]
    steps = [r["step"] for r in records]
    has_gct = any(r.get("gct_sem") is not None for r in records)
    figure, axes = plt.subplots(1, 2 if has_gct else 1, figsize=(10 if has_gct else 5, 3.5))
    axes = axes if has_gct else [axes]
    for key in [k for k in ("loss", "lm_loss") if all(r.get(k) is not None for r in records)]:
        axes[0].plot(steps, [r[key] for r in records], marker=".", label=key)
    axes[0].set(xlabel="step", ylabel="loss", title=title)
    axes[0].legend()
    if has_gct:
        for key in ("gct_sem", "gct_beh"):
            axes[1].plot(steps, [r[key] for r in records], marker=".", label=key)
        axes[1].set(xlabel="step", ylabel="InfoNCE", title="GCT (unweighted)")
        axes[1].legend()
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def plot_learning_curve(metrics_path: Path, baselines_path: Path, out: Path, title: str) -> None:
    """Validation Recall@10 against training samples seen, with the baselines' values on the
    same users (most-popular, co-occurrence, SASRec: `validation.baseline_metrics`) as
    horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [r for r in read_records(metrics_path) if r.get(VALID_KEYS[0]) is not None]
    baselines = json.loads(Path(baselines_path).read_text())
    figure, axis = plt.subplots(figsize=(6, 3.8))
    axis.plot(
        [r["samples"] for r in points], [r[VALID_KEYS[0]] for r in points], marker="o", label=title
    )
    for (name, metrics), style in zip(
        ((k, v) for k, v in baselines.items() if isinstance(v, dict)),
        ("--", ":", "-.", (0, (1, 4))),
        strict=False,
    ):
        axis.axhline(metrics["recall@10"], linestyle=style, color="grey", label=name)
    axis.set(
        xlabel="training samples seen",
        ylabel="validation Recall@10",
        title=f"{title}: {baselines['n_users']} validation users",
    )
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
