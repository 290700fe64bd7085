"""``observe-r1 demo``: the whole Observe-R1 pipeline, small enough for a laptop CPU.

synth (train + held-out test rows of the starter levels) -> NeuraLadder (N rollouts per row
with the model) -> a few GRPO steps of ``smol-cpu.yaml`` (groups of 8, every Observe-R1
component on) -> greedy evaluation before and after -> ``runs/observe_r1_demo/report.md``
with the training signal of each step, the ladder, reward and accuracy plots.
`draw_counting_rows` is a minimal row source for tests.

The rows are the open-answer starter families on which the default model gets some but not
all of a group right (results/observe_r1_starter_probe.md), so the groups carry signal;
arithmetic (0.06 sampled accuracy there) is left out. Without the greedy filter, which would
drop exactly the easy rows a weak model learns from.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from PIL import Image, ImageDraw

from model_zoo.significance import mcnemar, paired_bootstrap
from model_zoo.training_guards import read_records
from observe_r1.data.synth import STARTER_LEVELS
from observe_r1.training.config import load_config
from observe_r1.training.train import train

RUN = Path("runs/observe_r1_demo")
SMOL_CPU_CONFIG = Path(__file__).parents[2] / "configs" / "observe_r1" / "smol-cpu.yaml"
STARTER_FAMILIES = ("counting", "dice", "chart", "geometry")
EVAL_BATCH = 64  # rows per generation call: 2x the rows/s of 8 (bench_ladder_throughput.md)


def draw_counting_rows(folder: Path, n: int, seed: int = 0) -> Path:
    """``n`` images with 1-6 red circles and the question how many; returns the JSONL."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for index in range(n):
        count = rng.randint(1, 6)
        image = Image.new("RGB", (112, 112), "white")
        draw = ImageDraw.Draw(image)
        for k in range(count):
            x, y = 8 + 17 * k, rng.randint(10, 80)
            draw.ellipse((x, y, x + 14, y + 14), fill="red")
        image.save(folder / f"count-{index}.png")
        question = "How many red circles are in the image?"
        row = {"id": f"count-{index}", "image": f"count-{index}.png", "question": question}
        caption = f"A white picture with {count} red circle{'s' * (count > 1)}."
        rationale = "Counting the red circles: " + ", ".join(map(str, range(1, count + 1))) + "."
        lines.append(
            json.dumps({**row, "answer": str(count), "caption": caption, "rationale": rationale})
        )
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "train.jsonl"


def _evaluate(
    model: str, rows: list[dict], out: Path, *, max_new_tokens: int
) -> tuple[dict, list[bool]]:
    """Greedy evaluation of ``model`` on ``rows``, report files in ``out``: (metrics, right
    or wrong per row)."""
    from observe_r1.evaluation.evaluate import evaluate_model, write_report

    metrics, records = evaluate_model(
        model, rows, max_new_tokens=max_new_tokens, batch_size=EVAL_BATCH
    )
    write_report(metrics, out, out.name, records)
    return metrics, [r["correct"] for r in sorted(records, key=lambda r: r["row"])]


def run_demo(
    out: Path = RUN,
    *,
    model: str = "smolvlm-dino",
    config: Path = SMOL_CPU_CONFIG,
    train_n: int = 12,
    test_n: int = 24,
    rollouts: int = 4,
    steps: int = 4,
    max_new_tokens: int = 96,
) -> Path:
    """synth -> ladder -> GRPO -> eval before/after -> ``out/report.md``; returns the report."""
    from observe_r1.data.rows import read_rows
    from observe_r1.data.synth import synthesize
    from observe_r1.ladder.build import LadderConfig, build_ladder

    started = time.perf_counter()
    train_rows = synthesize(
        out / "data", train_n, seed=0, test_n=test_n, families=STARTER_FAMILIES,
        levels=STARTER_LEVELS, choice_share=0.0,
    )  # fmt: skip
    test_rows = read_rows(out / "data" / "test.jsonl").rows
    ladder_path = out / "ladder.jsonl"
    ladder = build_ladder(
        LadderConfig(
            input=train_rows,
            model=model,
            out=ladder_path,
            rollouts=rollouts,
            max_new_tokens=max_new_tokens,
            greedy_filter=False,
        )  # fmt: skip
    )
    before = _evaluate(model, test_rows, out / "eval_before", max_new_tokens=max_new_tokens)
    settings = load_config(
        config,
        [
            f"model={model}",
            f"train_file={ladder_path}",
            f"output_dir={out / 'train'}",
            f"max_steps={steps}",
            f"max_completion_length={max_new_tokens}",
            f"save_steps={steps}",
            "logging_steps=1",  # the report's table has a line per step
        ],
    )
    groups_per_step = (
        settings.per_device_train_batch_size
        * settings.gradient_accumulation_steps
        // settings.num_generations
    )
    train_started = time.perf_counter()
    final = train(settings, overwrite=True)  # a rerun of the demo replaces its run
    train_seconds = time.perf_counter() - train_started
    after = _evaluate(str(final), test_rows, out / "eval_after", max_new_tokens=max_new_tokens)
    report = out / "report.md"
    steps_log = [r for r in read_records(out / "train" / "metrics.jsonl") if "reward" in r]
    report.write_text(
        render_report(
            model,
            ladder,
            before,
            after,
            steps_log,
            groups_per_step,
            train_seconds,
            started,
            test_n,
        )  # fmt: skip
    )
    return report


def signal_lines(steps_log: list[dict]) -> list[str]:
    """Per optimizer step: what the groups gave GRPO to learn from."""
    lines = [
        "| step | reward | sampled accuracy | groups with no signal | mean difficulty weight "
        "| bonus rate | mean completion tokens |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in steps_log:
        lines.append(
            f"| {r['step']} | {r['reward']:.3f} | {r['reward_accuracy']:.3f} | "
            f"{r['zero_signal_groups']:.0f} | {r['difficulty_weight_mean']:.3f} | "
            f"{r['bonus_rate']:.3f} | {r['completion_length_mean']:.1f} |"
        )
    return lines


def render_report(
    model, ladder, before, after, steps_log, groups_per_step, train_seconds, started, test_n
):
    (before, right_before), (after, right_after) = before, after
    steps = len(steps_log)
    change = mcnemar(right_after, right_before)
    difference, low, high = paired_bootstrap(right_after, right_before)
    groups = steps * groups_per_step
    silent = sum(r["zero_signal_groups"] for r in steps_log)
    verdict = (
        "no change detected: the interval holds 0"
        if low <= 0 <= high
        else "a change beyond the noise"
    )
    rows = [
        ("accuracy", "accuracy"),
        ("format rate", "format_rate"),
        ("mean response tokens", "mean_tokens"),
        ("majority-answer baseline", "majority_answer_baseline"),
        ("observation recall (caption numbers seen)", "observation_recall"),
    ]
    table = ["| metric | before | after |", "| --- | --- | --- |"]
    table += [
        f"| {name} | {before[key]:.3f} | {after[key]:.3f} |"
        for name, key in rows
        if before.get(key) is not None and after.get(key) is not None
    ]
    removed = ", ".join(f"{k} {v}" for k, v in ladder["removed"].items())
    return "\n".join(
        [
            "# Observe-R1 demo",
            "",
            f"Model `{model}`; {steps} GRPO steps with Observe-R1 shaping in "
            f"{train_seconds:.0f} s; whole demo {time.perf_counter() - started:.0f} s.",
            "",
            f"## Held-out synthetic test set ({test_n} questions, greedy)",
            "",
            *table,
            "",
            f"**What this shows: the pipeline end to end and the training signal below, not a "
            f"gain.** {steps} steps of {groups_per_step} group(s) of completions are far too "
            "few to train the model (results/observe_r1_starter.md trains 100 steps for that). "
            f"After minus before, question by question: {difference:+.3f}, 95 % "
            f"paired bootstrap interval [{low:+.3f}, {high:+.3f}] "
            f"({change.a_only} right only after, {change.b_only} right only before, McNemar "
            f"p = {change.p_value:.2f}): {verdict} (one question is {1 / test_n:.3f} here).",
            "",
            "![before](eval_before/eval.png)",
            "![after](eval_after/eval.png)",
            "",
            "## NeuraLadder of the training rows",
            "",
            f"{ladder['input_rows']} rows in, {ladder['output_rows']} out "
            f"({ladder['needs_review']} flagged for review); removed: {removed}.",
            "",
            "![ladder](ladder.png)",
            "",
            "## Training: the signal of each step",
            "",
            f"{groups - silent:.0f} of {groups} groups had some but not all completions right, so "
            "their advantages and difficulty weights are non-zero and the policy moved on "
            "them; a group all right or all wrong gets weight 0 (dynamic weighting) and "
            "teaches nothing.",
            "",
            *signal_lines(steps_log),
            "",
            "![reward curve](train/reward_curve.png)",
            "",
        ]
    )


def main() -> None:
    report = run_demo()
    print(f"report: {report}")


if __name__ == "__main__":
    main()
