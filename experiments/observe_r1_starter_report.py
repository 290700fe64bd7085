"""Report of experiments/observe_r1_starter.sh: tables, paired tests and curves.

Usage: python experiments/observe_r1_starter_report.py OUT_DIR

Reads OUT_DIR/{ladder.jsonl, start-observe, start-think, observe-r1, grpo, no-*} (whatever
exists; no-* are the single ablations)
and prints markdown: the ladder's sampled accuracy by thirds (easy -> hard), level and family;
each model's greedy test accuracy, format rate, mean response tokens and observation recall;
McNemar tests against the starting model (asked in the run's own format) and against the GRPO
baseline, with a paired bootstrap 95 % interval of the accuracy difference; accuracy per family
and level; answer collapse (each model's share of answers equal to its most common one per
family, beside the family-majority accuracy and the test rows' prior accuracy per family x level,
`observe_r1.evaluation.prior`) and how much of each model's accuracy its answer distribution earns
(its answers permuted within each family: no image test, that is `eval --image-ablation`); per run
the share of zero-signal groups and,
per 25 steps of its rollouts, sampled accuracy, format rate, length and the share cut at the
length cap. Writes OUT_DIR/curves.png (reward, zero-signal share and validation accuracy
against the optimizer step, one line per run).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from model_zoo.significance import (
    mcnemar,  # noqa: E402
    paired_bootstrap,  # noqa: E402
)
from observe_r1.data.rows import read_rows  # noqa: E402
from observe_r1.evaluation.prior import prior_accuracy  # noqa: E402

RUNS = {  # run -> the format it answers in
    "observe-r1": "observe",
    "grpo": "think",
    "no-weight": "observe",
    "no-bonus": "observe",
    "no-observe": "think",
    "no-order": "observe",
    "observe-r1-refill": "observe",
    "observe-r1-frozen-vision": "observe",
    "grpo-frozen-vision": "think",
}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def first_answers(test_dir: Path) -> list[dict]:
    """The greedy record of each test row, in row order."""
    records = [r for r in read_jsonl(test_dir / "predictions.jsonl") if r["sample"] == 0]
    return sorted(records, key=lambda r: r["row"])


def ladder_lines(ladder: list[dict]) -> list[str]:
    """Sampled accuracy of the ladder's rows by thirds of its order, by level and by family."""
    lines = [
        "| ladder part | rows | sampled accuracy | rows with signal |",
        "| --- | --- | --- | --- |",
    ]
    thirds = np.array_split(np.arange(len(ladder)), 3)
    groups = [
        (f"third {i + 1} of the order", [ladder[j] for j in part]) for i, part in enumerate(thirds)
    ]
    for key in ("level", "family"):
        values = sorted({row[key] for row in ladder}, key=str)
        groups += [(f"{key} {v}", [row for row in ladder if row[key] == v]) for v in values]
    groups.append(("all", ladder))
    for name, rows in groups:
        correct = sum(row["n_correct"] for row in rows)
        rollouts = sum(row["n_rollouts"] for row in rows)
        signal = sum(0 < row["n_correct"] < row["n_rollouts"] for row in rows)
        lines.append(f"| {name} | {len(rows)} | {correct / rollouts:.3f} | {signal} |")
    return lines


def comparison(a: list[dict], b: list[dict]) -> str:
    """Accuracy of ``a`` minus ``b`` on the same rows: the difference, its paired bootstrap
    95 % interval, the discordant counts and McNemar's p."""
    right_a = [r["correct"] for r in a]
    right_b = [r["correct"] for r in b]
    test = mcnemar(right_a, right_b)
    mean, low, high = paired_bootstrap(np.array(right_a, float), np.array(right_b, float))
    counts = f"{test.a_only}/{test.b_only}"
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}], {counts}, p = {test.p_value:.3g}"


def model_row(name: str, records: list[dict], start: list[dict], grpo: list[dict] | None) -> str:
    n = len(records)
    recalls = [r["observation_recall"] for r in records if r.get("observation_recall") is not None]
    recall = f"{np.mean(recalls):.3f}" if recalls else "-"
    versus_start = comparison(records, start) if records is not start else "-"
    versus_grpo = comparison(records, grpo) if grpo is not None and records is not grpo else "-"
    return (
        f"| {name} | {n} | {np.mean([r['correct'] for r in records]):.3f} | "
        f"{np.mean([r['formatted'] for r in records]):.3f} | "
        f"{np.mean([r['tokens'] for r in records]):.1f} | {recall} | {versus_start} | "
        f"{versus_grpo} |"
    )


def family_prior_lines(models: dict[str, list[dict]], rows: list[dict] | None) -> list[str]:
    """Answer collapse: per model, the share of its answers that are its most common answer
    within the row's family (1.0: one answer per family), against the accuracy of answering
    each family's most common gold answer (the prior a collapsed policy can reach) and,
    given the test `rows`, their prior accuracy per family x level
    (`observe_r1.evaluation.prior`)."""
    first = next(iter(models.values()))
    families = sorted({r["family"] for r in first})

    def top_share(records: list[dict], key: str) -> float:
        hits = 0
        for family in families:
            values = [str(r[key]).rstrip(".") for r in records if r["family"] == family]
            hits += max(values.count(v) for v in set(values))
        return hits / len(records)

    prior = prior_accuracy(rows) if rows else None
    per_level = (
        f" Best constant per family x level: {prior['prior_accuracy']:.3f} "
        f"(chance {prior['chance_accuracy']:.3f})."
        if prior
        else ""
    )
    lines = [
        f"Each family's most common gold answer: accuracy {top_share(first, 'gold'):.3f}."
        + per_level,
        "",
        "| model | share of answers that are its most common one in the family |",
        "| --- | --- |",
    ]
    lines += [
        f"| {name} | {top_share(records, 'prediction'):.3f} |" for name, records in models.items()
    ]
    return lines


def answer(value) -> str:
    return str(value).strip().rstrip(".")


def image_use_lines(models: dict[str, list[dict]], permutations: int = 2000) -> list[str]:
    """How much of a model's accuracy does its answer distribution earn? Its answers are
    permuted across the rows of each family (keeping how often it gives each answer there,
    cutting the link to the row: its image and its level alike, so this is no image test):
    the mean permuted accuracy is what its answer distribution alone earns; the p
    value is the share of permutations that score at least its accuracy (exact string match
    of answers; the integer answers here match as the judge does)."""
    rng = np.random.default_rng(0)
    lines = [
        "| model | accuracy | from its answer distribution alone (answers permuted within "
        "family) | beyond it | permutation p |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, records in models.items():
        family = np.array([r["family"] for r in records])
        gold = np.array([answer(r["gold"]) for r in records])
        said = np.array([answer(r["prediction"]) for r in records])
        observed = float(np.mean(said == gold))
        scores = np.empty(permutations)
        for k in range(permutations):
            shuffled = said.copy()
            for value in np.unique(family):
                rows = np.flatnonzero(family == value)
                shuffled[rows] = said[rng.permutation(rows)]
            scores[k] = np.mean(shuffled == gold)
        p = (1 + np.sum(scores >= observed)) / (1 + permutations)
        lines.append(
            f"| {name} | {observed:.3f} | {scores.mean():.3f} | {observed - scores.mean():+.3f} "
            f"| {p:.3g} |"
        )
    return lines


def breakdown_lines(models: dict[str, list[dict]]) -> list[str]:
    """Accuracy per family and per level, one column per model."""
    names = list(models)
    lines = [
        "| group | rows | " + " | ".join(names) + " |",
        "| --- | --- |" + " --- |" * len(names),
    ]
    for key in ("family", "level"):
        values = sorted({r[key] for r in next(iter(models.values()))}, key=str)
        for value in values:
            cells = []
            for records in models.values():
                chosen = [r["correct"] for r in records if r[key] == value]
                cells.append(f"{np.mean(chosen):.3f}")
            count = sum(r[key] == value for r in next(iter(models.values())))
            lines.append(f"| {key} {value} | {count} | " + " | ".join(cells) + " |")
    return lines


def run_metrics(run: Path) -> tuple[list[dict], list[dict]]:
    """(training step records, validation records) of a run's metrics.jsonl."""
    records = read_jsonl(run / "metrics.jsonl") if (run / "metrics.jsonl").is_file() else []
    steps = [r for r in records if "reward" in r]
    validations = [r for r in records if "eval_accuracy" in r]
    return steps, validations


def window_lines(out: Path, runs: list[str], cap: int, window: int = 25) -> list[str]:
    """Per run and window of ``window`` steps, from rollouts.jsonl: sampled accuracy, format
    rate, mean completion tokens, the share of completions cut at ``cap`` tokens (runaway
    responses) and the share of completions that carried a non-zero advantage."""
    lines = [
        f"| run | steps | sampled accuracy | format | mean tokens | cut at {cap} | with signal |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in runs:
        path = out / name / "rollouts.jsonl"
        if not path.is_file():
            continue
        rollouts = read_jsonl(path)
        last = max(r["step"] for r in rollouts)
        for start in range(1, last + 1, window):
            part = [r for r in rollouts if start <= r["step"] < start + window]
            formatted = np.mean([r["rewards"].get("format", 0) > 0 for r in part])
            lines.append(
                f"| {name} | {start}-{min(start + window - 1, last)} "
                f"| {np.mean([r['correct'] for r in part]):.3f} | {formatted:.3f} "
                f"| {np.mean([r['length'] for r in part]):.1f} "
                f"| {np.mean([r['length'] >= cap for r in part]):.3f} "
                f"| {np.mean([r['advantage'] != 0 for r in part]):.3f} |"
            )
    return lines


def plot_curves(out: Path, runs: dict[str, tuple[list[dict], list[dict]]]) -> None:
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for name, (steps, validations) in runs.items():
        x = [r["step"] for r in steps]
        window = 10
        for axis, key in zip(axes[:2], ("reward_accuracy", "zero_signal_groups"), strict=True):
            y = np.array([r[key] for r in steps], float)
            smooth = (
                np.convolve(y, np.ones(window) / window, mode="valid") if len(y) >= window else y
            )
            axis.plot(x[len(x) - len(smooth) :], smooth, label=name)
        axes[2].plot(
            [r["step"] for r in validations],
            [r["eval_accuracy"] for r in validations],
            marker="o",
            label=name,
        )
    titles = (
        "sampled accuracy (mean of 10 steps)",
        "zero-signal groups per step (mean of 10)",
        "validation accuracy (greedy, 60 rows)",
    )
    for axis, title in zip(axes, titles, strict=True):
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("optimizer step")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "curves.png", dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--max-completion-length", type=int, default=96, help="the arms' cap (smol-cpu.yaml)"
    )
    args = parser.parse_args()
    out = args.out
    if (out / "ladder.jsonl").is_file():
        print("\n".join(ladder_lines(read_jsonl(out / "ladder.jsonl"))) + "\n")
    starts = {
        f: first_answers(out / f"start-{f}")
        for f in ("observe", "think")
        if (out / f"start-{f}" / "eval.json").is_file()
    }
    tested = {
        name: first_answers(out / name / "test")
        for name in RUNS
        if (out / name / "test" / "eval.json").is_file()
    }
    grpo = tested.get("grpo")
    print(
        "| model | rows | accuracy | format | mean tokens | observation recall | "
        "vs start: diff [95 % CI], right only here / only there, McNemar p | vs GRPO |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for answer_format, records in starts.items():
        print(model_row(f"start ({answer_format} format)", records, records, None))
    for name, records in tested.items():
        start = starts.get(RUNS[name])
        if start is not None:
            print(model_row(name, records, start, grpo))
    models = {f"start ({f})": r for f, r in starts.items()} | tested
    if models:
        print("\n" + "\n".join(breakdown_lines(models)))
        test_rows = out / "data" / "test.jsonl"
        rows = read_rows(test_rows).rows if test_rows.is_file() else None
        print("\n" + "\n".join(family_prior_lines(models, rows)))
        print("\n" + "\n".join(image_use_lines(models)))
    runs = {name: run_metrics(out / name) for name in RUNS if (out / name).is_dir()}
    if runs:
        print(
            "\n| run | steps | zero-signal groups (share of steps) | bonus rate | "
            "validation accuracy (step: value) |"
        )
        print("| --- | --- | --- | --- | --- |")
        for name, (steps, validations) in runs.items():
            zero = np.mean([r["zero_signal_groups"] > 0 for r in steps]) if steps else float("nan")
            bonus = np.mean([r["bonus_rate"] for r in steps]) if steps else float("nan")
            curve = ", ".join(f"{r['step']}: {r['eval_accuracy']:.3f}" for r in validations)
            print(f"| {name} | {len(steps)} | {zero:.2f} | {bonus:.3f} | {curve} |")
        print("\n" + "\n".join(window_lines(out, list(runs), cap=args.max_completion_length)))
        plot_curves(out, runs)
        print(f"\ncurves: {out / 'curves.png'}")


if __name__ == "__main__":
    main()
