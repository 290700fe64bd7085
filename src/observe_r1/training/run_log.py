"""``metrics.jsonl`` and ``reward_curve.png`` next to a training run."""

from __future__ import annotations

import time
from pathlib import Path

from transformers import TrainerCallback

from model_zoo.training_guards import append_record, read_records

# metrics.jsonl key <- TRL log key. TRL logs these once per generation round, at the step
# that generates; the other steps of the round carry the round's values.
_ROUND_KEYS = {
    "reward": "reward",
    "reward_format": "rewards/format/mean",
    "reward_accuracy": "rewards/accuracy/mean",
    "bonus_rate": "observe_r1/bonus_rate",
    "difficulty_weight_mean": "observe_r1/difficulty_weight_mean",
    "zero_signal_groups": "observe_r1/zero_signal_groups",
    "frac_reward_zero_std": "frac_reward_zero_std",
    "completion_length_mean": "completions/mean_length",
    # dynamic sampling (filter_groups; None when off)
    "groups_dropped": "observe_r1/groups_dropped",
    "groups_filled": "observe_r1/groups_filled",
    "prompts_consumed": "observe_r1/prompts_consumed",
    "refill_rounds": "observe_r1/refill_rounds",
}
# ... and these every optimizer step
_STEP_KEYS = {
    "kl": "kl",
    "loss": "loss",
    "grad_norm": "grad_norm",
    "learning_rate": "learning_rate",
}


def rollout_of_step(step: int, steps_per_generation: int, num_iterations: int, accumulation: int):
    """The 1-based generation round that optimizer step ``step`` (1-based) trains on: a round
    is ``steps_per_generation x num_iterations`` micro-steps, a step ``accumulation`` of them."""
    return (step - 1) * accumulation // (steps_per_generation * num_iterations) + 1


class MetricsFile(TrainerCallback):
    """Appends one JSON object per logging step to ``path`` (main process only); with
    ``logging_steps: 1``, one per optimizer step. ``rollout`` names the generation round."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._step_started = time.perf_counter()
        self._step_seconds: list[float] = []
        self._round: dict = {}  # the values of the round being trained on ...
        self._round_index: int | None = None  # ... and its rollout index
        if self.path.is_file():  # resumed: the file is cut at the checkpoint's step
            steps = [r for r in read_records(self.path) if "rollout" in r]  # not validations
            if steps:
                self._round = {key: steps[-1].get(key) for key in _ROUND_KEYS}
                self._round_index = steps[-1].get("rollout")

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._step_seconds.append(time.perf_counter() - self._step_started)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return  # eval logs and the closing summary carry no "loss"
        rollout = rollout_of_step(
            state.global_step,
            args.steps_per_generation,
            args.num_iterations,
            args.gradient_accumulation_steps,
        )
        if "reward" in logs:
            self._round = {ours: logs.get(theirs) for ours, theirs in _ROUND_KEYS.items()}
            self._round_index = rollout
        record = {"step": state.global_step, "rollout": rollout}
        known = self._round_index == rollout
        record.update({ours: self._round.get(ours) if known else None for ours in _ROUND_KEYS})
        record.update({ours: logs.get(theirs) for ours, theirs in _STEP_KEYS.items()})
        seconds = self._step_seconds or [float("nan")]
        record["step_seconds"] = sum(seconds) / len(seconds)
        self._step_seconds = []
        append_record(self.path, record)


def plot_reward_curve(metrics_path: Path, out: Path) -> None:
    """Reward, format and accuracy rewards per step, completion length per step; with
    validations, their greedy accuracy and format rate (left) and mean length (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_records(metrics_path)
    trained = [r for r in records if "rollout" in r]
    validated = [r for r in records if "eval_accuracy" in r]
    steps = [r["step"] for r in trained]
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for key in ("reward", "reward_format", "reward_accuracy"):
        axes[0].plot(steps, [r.get(key) for r in trained], marker="o", label=key)
    axes[1].plot(steps, [r.get("completion_length_mean") for r in trained], marker="o")
    if validated:
        at = [r["step"] for r in validated]
        for key, style in (("eval_accuracy", "s--"), ("eval_format_rate", "^--")):
            axes[0].plot(at, [r[key] for r in validated], style, label=f"{key} (greedy)")
        axes[1].plot(at, [r["eval_mean_tokens"] for r in validated], "s--", label="eval (greedy)")
        axes[1].legend()
    axes[0].set(xlabel="step", ylabel="mean reward / rate", title="rewards")
    axes[0].legend()
    axes[1].set(xlabel="step", ylabel="tokens", title="completion length")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
