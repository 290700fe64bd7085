"""Balanced assignment: the chunked greedy of ``eager_llm.indexing.kmeans`` vs the plain greedy.

The reference is the former implementation, one Python step per (point, centroid) pair in the
order of a stable argsort of the flattened distances; the test suite checks the new function
against it. Both run on the same random (n, k) matrices, alternately, in the same process;
the script prints the median wall-clock and CPU time (this process's: the steadier measure
on a shared machine) of each over the repeats and their ratio.

    .venv/bin/python benchmarks/balanced_assignment.py [--n 20000] [--k 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from eager_llm.indexing.kmeans import balanced_assignment


def reference_balanced_assignment(distances: np.ndarray) -> np.ndarray:
    """The plain greedy (the implementation before issue 20): every pair in stable-argsort
    order, taken when the point is free and the cluster has room."""
    n, k = distances.shape
    small, larger_left = divmod(n, k)
    labels = np.full(n, -1, dtype=np.int64)
    sizes = np.zeros(k, dtype=np.int64)
    assigned = 0
    for flat in np.argsort(distances, axis=None, kind="stable"):
        point, cluster = divmod(int(flat), k)
        if labels[point] >= 0:
            continue
        if sizes[cluster] < small or (sizes[cluster] == small and larger_left > 0):
            larger_left -= sizes[cluster] == small
            labels[point] = cluster
            sizes[cluster] += 1
            assigned += 1
            if assigned == n:
                break
    return labels


def clustered_distances(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n, k) squared distances of n points around 64 Gaussian centres to k centroids drawn
    among the points: the unbalanced natural clusters make the capacities bind."""
    centres = rng.normal(size=(64, 16))
    points = centres[rng.integers(0, 64, n)] + rng.normal(scale=0.5, size=(n, 16))
    centroids = points[rng.choice(n, k, replace=False)]
    return ((points[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--k", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for name, draw in (
        ("uniform", lambda: rng.random((args.n, args.k))),
        ("clustered", lambda: clustered_distances(args.n, args.k, rng)),
    ):
        times: dict[str, list[tuple[float, float]]] = {"reference": [], "chunked": []}
        for _ in range(args.repeats):
            distances = draw()
            results = {}
            for label, function in (
                ("reference", reference_balanced_assignment),
                ("chunked", balanced_assignment),
            ):
                wall, cpu = time.perf_counter(), time.process_time()
                results[label] = function(distances)
                times[label].append((time.perf_counter() - wall, time.process_time() - cpu))
            if not np.array_equal(results["reference"], results["chunked"]):
                raise SystemExit(f"{name}: the chunked labels differ from the reference's")
        print(f"{name} n={args.n} k={args.k}, median of {args.repeats} (same labels):")
        for clock, column in (("wall", 0), ("CPU", 1)):
            old, new = (
                statistics.median(run[column] for run in times[label])
                for label in ("reference", "chunked")
            )
            print(
                f"  {clock:<4} reference {old:8.3f} s, chunked {new:7.4f} s, ratio {old / new:.0f}x"
            )


if __name__ == "__main__":
    main()
