"""Paired bootstrap of a per-user metric difference."""

import numpy as np
import pytest

from eager_llm.significance import paired_bootstrap


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
