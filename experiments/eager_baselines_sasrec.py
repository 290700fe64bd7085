"""Train SASRec grid points of ``eager-llm baselines`` (:mod:`eager_llm.baselines.tuning`)
into a models folder, one process per call, so they can run pinned side by side:

    OMP_NUM_THREADS=1 nice -n 10 taskset -c 0 .venv/bin/python \\
        experiments/eager_baselines_sasrec.py --dataset movielens-100k \\
        --models runs/baselines/ml100k/sasrec --lengths 50 --part 0/2

A finished point (``report.json``) is skipped; ``--part I/N`` trains every N-th point,
``--points NAME,...`` only those named (e.g. ``len200-d64-drop0.2-lr0.001``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from eager_llm.baselines.tuning import load_split, sasrec_grid, train_sasrec_point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="movielens-100k")
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--lengths", default="50,200")
    parser.add_argument("--part", default="0/1")
    parser.add_argument("--points", default="", help="Only these grid points (names, commas).")
    parser.add_argument("--max-minutes", type=float, default=None, help="Time box per point.")
    args = parser.parse_args()
    torch.set_num_threads(1)
    part, parts = map(int, args.part.split("/"))
    valid = load_split(args.dataset, "valid")
    points = sasrec_grid([int(n) for n in args.lengths.split(",")])[part::parts]
    if args.points:
        points = [p for p in points if p.name in args.points.split(",")]
    for point in points:
        print(f"== {point.name}", flush=True)
        report = train_sasrec_point(
            valid.loo.train,
            valid,
            point,
            args.models,
            log=lambda line: print(line, flush=True),
            max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
        )
        print(f"== {point.name}: best {report['best']} in {report['seconds']} s", flush=True)


if __name__ == "__main__":
    main()
