"""Paired tests of two models' right/wrong answers on the same held-out rows.

McNemar's exact test: only the discordant rows carry evidence, ``b`` right only under model
A and ``c`` right only under model B; under "equally accurate" each discordant row goes
either way with probability 1/2, so ``min(b, c)`` is binomial(b + c, 1/2) and the two-sided
p-value is ``P(X <= min) + P(X >= max)``, capped at 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
