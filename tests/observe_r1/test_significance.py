"""McNemar's exact test and the paired bootstrap on paired right/wrong answers."""

import math

import pytest

from observe_r1.significance import mcnemar, paired_bootstrap


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


def test_paired_bootstrap_centres_on_the_difference_and_widens_with_fewer_rows():
    a = [True] * 30 + [False] * 70
    b = [False] * 10 + [True] * 20 + [False] * 70  # A right on 10 more rows
    result = paired_bootstrap(a, b)
    assert math.isclose(result.difference, 0.10)
    assert 0 < result.low < 0.10 < result.high < 0.2 and result.excludes_zero
    small = paired_bootstrap(a[::10], b[::10])  # the same 10 % of rows
    assert small.high - small.low > result.high - result.low


def test_paired_bootstrap_of_identical_answers_is_zero_and_checks_lengths():
    same = paired_bootstrap([True, False, True], [True, False, True])
    assert (same.difference, same.low, same.high, same.excludes_zero) == (0, 0, 0, False)
    with pytest.raises(ValueError):
        paired_bootstrap([True], [True, False])
