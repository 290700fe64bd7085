"""McNemar's exact test on paired right/wrong answers."""

import math

import pytest

from observe_r1.significance import mcnemar


def test_counts_only_discordant_rows():
    a = [True, True, False, False, True, False]
    b = [True, False, True, False, False, False]
    result = mcnemar(a, b)
    assert (result.a_only, result.b_only, result.difference) == (2, 1, 1)


def test_p_value_is_the_exact_two_sided_binomial_tail():
    # 10 discordant rows all one way: p = 2 * 0.5**10
    result = mcnemar([True] * 10 + [False] * 5, [False] * 15)
    assert math.isclose(result.p_value, 2 * 0.5**10)
    # 8 vs 2: P(X <= 2) + P(X >= 8) for X ~ Bin(10, 1/2) = 2 * (1 + 10 + 45) / 1024
    a = [True] * 8 + [False] * 2
    result = mcnemar(a, [not x for x in a])
    assert math.isclose(result.p_value, 2 * 56 / 1024)


def test_no_evidence_gives_p_one():
    assert mcnemar([True, False], [True, False]).p_value == 1.0
    assert mcnemar([True, False], [False, True]).p_value == 1.0


def test_symmetric():
    a = [True, True, True, False, False, True, False]
    b = [False, True, False, True, False, False, False]
    assert math.isclose(mcnemar(a, b).p_value, mcnemar(b, a).p_value)
    assert mcnemar(a, b).difference == -mcnemar(b, a).difference


def test_rejects_unpaired_lists():
    with pytest.raises(ValueError, match="equal-length"):
        mcnemar([True], [True, False])
    with pytest.raises(ValueError, match="non-empty"):
        mcnemar([], [])
