"""Build a DKI item index end to end and print the time of each stage.

    .venv/bin/python benchmarks/index_build.py          # ML-1M, K=256, SASRec 3 epochs
    .venv/bin/python benchmarks/index_build.py --dataset movielens-100k --epochs 40 --lr 1e-3
    .venv/bin/python benchmarks/index_build.py --synthetic 20000 --epochs 1   # Amazon files
    .venv/bin/python benchmarks/index_build.py --catalogue 100000             # k-means alone

Stages: load (+ preprocessing), behaviour (SASRec training), semantic (MiniLM), quantise
(hierarchical k-means of both sources), collisions (resolution + bijection check), write.
The embedding cache is a fresh temporary folder, so nothing is reused. Also prints SASRec's
validation Recall@10 / NDCG@10 next to popularity's (training-set item counts) on the same
leave-one-out split. Target for ML-1M: under 5 minutes on 2 CPU cores.

``--synthetic N`` builds instead on generated Amazon 2014 files of N items and ``--users``
users (default 2 N; :func:`eager_llm.data.synthetic.write_amazon_2014`), written to the
temporary folder first (their time is printed, not counted in the build). ``--negatives``
trains SASRec with a sampled softmax (a full one over 100k items is slow on a CPU).

``--catalogue N`` times the indexing proper, build_index's ``quantise`` and ``collisions``
stages, on N items whose embeddings are drawn instead of learnt (semantic 384-d and
behaviour 64-d, each around 200 Gaussian cluster centres), without SASRec and MiniLM.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch

from eager_llm.data import leave_one_out, load_dataset
from eager_llm.data.synthetic import write_amazon_2014
from eager_llm.encoders import TrainConfig
from eager_llm.indexing import (
    IndexConfig,
    build_index,
    build_item_index,
    check_bijection,
    make_indexer,
    resolve_collisions,
)
from eager_llm.indexing.dki import BEHAVIOUR, SEMANTIC
from eager_llm.metrics import metrics_from_ranks, score_ranks


def popularity_metrics(dataset: str) -> dict[str, float]:
    """Validation Recall@10 / NDCG@10 of ranking every item by its training count."""
    interactions, _ = load_dataset(dataset)
    split = leave_one_out(interactions)
    counts = np.bincount(np.concatenate(split.train), minlength=interactions.n_items)
    scores = torch.tensor(counts, dtype=torch.float32)
    targets = [example.target for example in split.valid]
    chunks = [targets[start : start + 1024] for start in range(0, len(targets), 1024)]
    ranks = [score_ranks(scores.expand(len(chunk), -1), chunk) for chunk in chunks]
    return metrics_from_ranks(np.concatenate(ranks))  # users in chunks: (users, items) is big


def catalogue_index(items: int, indexer: str, k: int) -> None:
    """Print the quantise and collisions times (wall clock and this process's CPU: the
    steadier measure on a shared machine) of ``items`` drawn items (module docstring)."""
    rng = np.random.default_rng(0)
    embeddings = {}
    for source, dim in ((SEMANTIC, 384), (BEHAVIOUR, 64)):
        centres = rng.normal(size=(200, dim)).astype(np.float32)
        noise = rng.normal(scale=0.5, size=(items, dim)).astype(np.float32)
        embeddings[source] = centres[rng.integers(0, 200, items)] + noise
    seconds = {}
    wall, cpu = time.perf_counter(), time.process_time()
    codes = make_indexer(indexer, k=k).fit(embeddings)
    seconds["quantise"] = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    codes, collisions = resolve_collisions(codes)
    check_bijection(build_item_index([f"I{i}" for i in range(items)], codes.values))
    seconds["collisions"] = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{items} drawn items, indexer {indexer}, K={k}: levels {codes.values.shape[1]} "
          f"({' '.join(codes.level_sources)})")  # fmt: skip
    for stage, (wall, cpu) in seconds.items():
        print(f"  {stage:<11} {wall:8.1f} s wall, {cpu:8.1f} s CPU of this process")
    print(f"  (torch threads: {torch.get_num_threads()}); collisions: {json.dumps(collisions)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="movielens-1m")
    parser.add_argument("--indexer", default="dki")
    parser.add_argument("--k", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--negatives", type=int, default=None)
    parser.add_argument("--synthetic", type=int, default=None, metavar="ITEMS")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--catalogue", type=int, default=None, metavar="ITEMS")
    args = parser.parse_args()
    if args.catalogue:
        catalogue_index(args.catalogue, args.indexer, args.k)
        return
    with tempfile.TemporaryDirectory() as tmp:
        dataset = args.dataset
        if args.synthetic:
            start = time.perf_counter()
            users = args.users or 2 * args.synthetic
            dataset = write_amazon_2014(f"{tmp}/amazon", users=users, items=args.synthetic)
            print(f"generated {users} users x {args.synthetic} items in "
                  f"{time.perf_counter() - start:.1f} s")  # fmt: skip
        config = IndexConfig(
            indexer=args.indexer,
            k=args.k,
            train=TrainConfig(
                epochs=args.epochs, lr=args.lr, patience=args.patience, negatives=args.negatives
            ),
            cache_root=f"{tmp}/cache",
            progress=False,
        )
        start = time.perf_counter()
        stats = build_index(dataset, f"{tmp}/index", config)
        total = time.perf_counter() - start
        popularity = popularity_metrics(dataset)
    print(f"{dataset}: {stats['num_items']} items, indexer {args.indexer}, K={args.k}")
    for stage, seconds in stats["timings_s"].items():
        print(f"  {stage:<11} {seconds:8.1f} s")
    print(f"  {'total':<11} {total:8.1f} s  (torch threads: {torch.get_num_threads()})")
    usage = " ".join(f"{level['used']}/{level['size']}" for level in stats["codebook_usage"])
    print(f"levels {stats['levels']} ({' '.join(stats['level_sources'])}), usage {usage}")
    collisions = {key: stats[key] for key in ("collision_rate", "colliding_items", "extra_levels")}
    print(f"collisions before resolution: {json.dumps(collisions)}")
    sasrec = stats["sasrec_valid"]
    print(f"SASRec valid (best epoch {stats['sasrec_best_epoch']}): {json.dumps(sasrec)}")
    print(f"popularity valid: {json.dumps(popularity)}")


if __name__ == "__main__":
    main()
