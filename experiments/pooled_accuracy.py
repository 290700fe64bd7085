"""Right answers of one model on several held-out sets, and pooled against the majority answer.

Usage: python experiments/pooled_accuracy.py EVAL_DIR:TEST.jsonl [EVAL_DIR:TEST.jsonl ...]

Each EVAL_DIR is an ``observe-r1 eval --out`` folder; its ``predictions.jsonl`` is scored
again against TEST.jsonl (so observation recall is there for evaluations older than that
metric). Prints, per set, right answers (also split into choice and open questions), the
majority-answer baseline, format rate and
observation recall, then the pooled accuracy with a one-sided binomial test of "above the
pooled majority rate".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from scipy.stats import binomtest

from observe_r1.evaluation.evaluate import metrics_from_records, observation_recall


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rescored(eval_dir: Path, test_file: Path) -> tuple[dict, str]:
    """(metrics of the first samples, "right of choice rows, right of open rows")."""
    rows = read_jsonl(test_file)
    records = read_jsonl(eval_dir / "predictions.jsonl")
    for position, record in enumerate(records):
        record.setdefault("row", position)  # older files: one greedy sample per row, in order
        caption = rows[record["row"]].get("caption")
        record["observation_recall"] = observation_recall(record["response"], caption)
    firsts = [r for r in records if r["sample"] == 0]
    choice = [r["correct"] for r in firsts if rows[r["row"]].get("choices")]
    open_ = [r["correct"] for r in firsts if not rows[r["row"]].get("choices")]
    split = f"choice {sum(choice)}/{len(choice)}, open {sum(open_)}/{len(open_)}"
    return metrics_from_records(records), split


def main(pairs: list[str]) -> None:
    right = rows = majority = 0
    for pair in pairs:
        if ":" not in pair:
            sys.exit(f"{pair}: expected EVAL_DIR:TEST.jsonl")
        eval_dir, test_file = pair.split(":", 1)
        try:
            metrics, split = rescored(Path(eval_dir), Path(test_file))
        except FileNotFoundError as error:
            sys.exit(f"{error.filename}: not found")
        n = metrics["rows"]
        hits, baseline = (round(metrics[k] * n) for k in ("accuracy", "majority_answer_baseline"))
        recall = metrics["observation_recall"]
        print(
            f"{eval_dir}: {hits}/{n} right ({split}), majority {baseline}, format "
            f"{metrics['format_rate']:.3f}, observation recall "
            + ("-" if recall is None else f"{recall:.3f}")
        )
        right, rows, majority = right + hits, rows + n, majority + baseline
    p = binomtest(right, rows, majority / rows, alternative="greater").pvalue
    print(
        f"pooled: {right}/{rows} = {right / rows:.3f} vs majority {majority}/{rows} = "
        f"{majority / rows:.3f}; one-sided binomial p = {p:.4f}"
    )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.split("\n\n")[1])
    main(sys.argv[1:])
