"""Markdown table of the Observe-R1 ablation runs in a folder (see observe_r1_ablations.sh).

Usage: python experiments/ablation_table.py OUT_DIR [--before EVAL_DIR]
"""

import argparse
import json
from pathlib import Path


def run_row(name: str, run: Path) -> str:
    report = json.loads((run / "eval" / "eval.json").read_text())
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = max((m["step"] for m in metrics if "step" in m), default=0)
    seconds = (run / "train_seconds.txt").read_text().strip()
    return (
        f"| {name} | {steps} | {seconds} | {report['accuracy']:.3f} | "
        f"{report['format_rate']:.3f} | {report['mean_tokens']:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--before", type=Path, help="eval folder of the model before RL")
    args = parser.parse_args()
    print("| run | steps | train s | accuracy | format rate | mean tokens |")
    print("| --- | --- | --- | --- | --- | --- |")
    if args.before:
        report = json.loads((args.before / "eval.json").read_text())
        print(
            f"| before RL | 0 | 0 | {report['accuracy']:.3f} | {report['format_rate']:.3f} | "
            f"{report['mean_tokens']:.1f} |"
        )
    for run in sorted(p for p in args.out.iterdir() if (p / "eval" / "eval.json").is_file()):
        print(run_row(run.name, run))


if __name__ == "__main__":
    main()
