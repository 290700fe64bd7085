"""Paired tests of two models scored on the same items (held-out rows, users).

McNemar's exact test, on right/wrong answers: only the discordant rows carry evidence, ``b``
right only under model A and ``c`` right only under model B; under "equally accurate" each
discordant row goes either way with probability 1/2, so ``min(b, c)`` is binomial(b + c, 1/2) and
the two-sided p-value is ``P(X <= min) + P(X >= max)``, capped at 1.

Paired bootstrap, on any per-item score (e.g. Recall@10 in {0, 1}): resampling items with
replacement and recomputing ``mean(a - b)`` gives the percentile interval of the mean
difference. Pairing removes the between-item variance that an unpaired comparison would carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from scipy.stats import binomtest


@dataclass(frozen=True)
class McNemar:
    """Discordant counts and the exact two-sided p-value of a paired comparison."""

    a_only: int  # rows model A gets right and model B wrong
    b_only: int  # rows model B gets right and model A wrong
    p_value: float

    @property
    def difference(self) -> int:
        """Right answers of A minus right answers of B (= a_only - b_only)."""
        return self.a_only - self.b_only


def mcnemar(a: Sequence[bool], b: Sequence[bool]) -> McNemar:
    """Exact McNemar test of ``a`` vs ``b``: correctness (n_rows,) of two models, row by row."""
    if len(a) != len(b) or not len(a):
        raise ValueError(
            f"need two equal-length, non-empty answer lists, got {len(a)} and {len(b)}"
        )
    a_only = sum(bool(x) and not bool(y) for x, y in zip(a, b, strict=True))
    b_only = sum(bool(y) and not bool(x) for x, y in zip(a, b, strict=True))
    discordant = a_only + b_only
    p = 1.0 if discordant == 0 else binomtest(a_only, discordant, 0.5).pvalue
    return McNemar(a_only, b_only, float(min(p, 1.0)))


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, *, resamples: int = 10_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean(a - b), lower, upper) of the ``level`` percentile interval: a, b (n_items,)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"need two equal-length 1-d score arrays, got {a.shape} and {b.shape}")
    difference = a - b
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 1000):  # bounded memory: 1000 x n_items at a time
        stop = min(resamples, start + 1000)
        picks = rng.integers(0, len(difference), size=(stop - start, len(difference)))
        means[start:stop] = difference[picks].mean(1)
    tail = (1 - level) / 2 * 100
    lower, upper = np.percentile(means, [tail, 100 - tail])
    return float(difference.mean()), float(lower), float(upper)


def holm(p_values: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """Holm's step-down rule: which hypotheses are rejected at family-wise error ``alpha``."""
    order = np.argsort(p_values, kind="stable")
    rejected = [False] * len(p_values)
    for rank, index in enumerate(order):
        if p_values[index] > alpha / (len(p_values) - rank):
            break
        rejected[index] = True
    return rejected


def detectable(se: float, alpha: float, power: float = 0.80) -> float:
    """Smallest true difference a two-sided test at ``alpha`` finds with ``power``, given the
    difference's standard error (normal approximation)."""
    z = NormalDist().inv_cdf
    return (z(1 - alpha / 2) + z(power)) * se
