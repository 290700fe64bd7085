"""Paired bootstrap confidence intervals for a difference of per-user metrics.

Two methods ranked for the same users give per-user scores ``a`` and ``b`` (e.g. Recall@10
in {0, 1}); resampling users with replacement and recomputing ``mean(a - b)`` gives the
percentile interval of the mean difference. Pairing removes the between-user variance that
an unpaired comparison would carry.
"""

from __future__ import annotations

import numpy as np


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, *, resamples: int = 10_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean(a - b), lower, upper) of the ``level`` percentile interval: a, b (n_users,)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"need two equal-length 1-d score arrays, got {a.shape} and {b.shape}")
    difference = a - b
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 1000):  # bounded memory: 1000 x n_users at a time
        stop = min(resamples, start + 1000)
        picks = rng.integers(0, len(difference), size=(stop - start, len(difference)))
        means[start:stop] = difference[picks].mean(1)
    tail = (1 - level) / 2 * 100
    lower, upper = np.percentile(means, [tail, 100 - tail])
    return float(difference.mean()), float(lower), float(upper)
