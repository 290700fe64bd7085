"""McNemar's exact test on paired right/wrong answers; the paired bootstrap of a per-item score
difference; Holm's step-down rule; the smallest detectable difference."""

import math

import numpy as np
import pytest

from model_zoo.significance import detectable, holm, mcnemar, paired_bootstrap


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


def test_identical_methods_have_a_zero_width_interval():
    a = np.array([1.0, 0.0, 1.0, 0.0])
    assert paired_bootstrap(a, a) == (0.0, 0.0, 0.0)


def test_interval_covers_the_mean_and_shrinks_with_more_users():
    rng = np.random.default_rng(1)
    small_a, small_b = rng.random(100) < 0.3, rng.random(100) < 0.1
    big_a, big_b = rng.random(10_000) < 0.3, rng.random(10_000) < 0.1
    mean, low, high = paired_bootstrap(small_a, small_b)
    assert low < mean < high and low > 0  # 0.3 vs 0.1 over 100 users is decided
    _, big_low, big_high = paired_bootstrap(big_a, big_b, resamples=2000)
    assert big_high - big_low < (high - low) / 5
    assert big_low < 0.2 < big_high


def test_pairing_sees_a_consistent_small_gain_that_noise_would_hide():
    rng = np.random.default_rng(2)
    b = (rng.random(500) < 0.5).astype(float)
    a = b.copy()
    a[np.flatnonzero(b == 0)[:15]] = 1.0  # a wins 15 users, never loses
    mean, low, _ = paired_bootstrap(a, b)
    assert mean == pytest.approx(0.03) and low > 0


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="equal-length"):
        paired_bootstrap(np.zeros(3), np.zeros(4))


def test_holm_step_down():
    assert holm([0.01, 0.04, 0.03, 0.005]) == [True, False, False, True]
    # Holm rejects the second where Bonferroni (0.04 > 0.05 / 2) would not
    assert holm([0.02, 0.04]) == [True, True]
    assert holm([0.03, 0.04]) == [False, False]  # 0.03 > 0.05 / 2 stops at once
    assert holm([]) == []


def test_detectable_effect_is_the_normal_power_formula():
    assert detectable(0.01, 0.05) == pytest.approx((1.959964 + 0.841621) * 0.01, 1e-5)
    assert detectable(0.01, 0.05 / 6) > detectable(0.01, 0.05)
