"""Tests for Observe-R1 advantage shaping: paper table, bonus rules, and GRPO properties.

Cases named ``public_defect_*`` show the fixed behaviour where the public Observe-R1 code differs.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from observe_r1.training.shaping import (
    bonus_mask,
    difficulty_weight,
    group_normalise,
    shape_advantages,
)

# --- difficulty weight ------------------------------------------------------------------------

PAPER_TABLE_G8 = [0.0, 0.79, 1.35, 1.69, 1.80, 1.69, 1.35, 0.79, 0.0]  # f by number correct of 8


@pytest.mark.parametrize(("num_correct", "expected"), list(enumerate(PAPER_TABLE_G8)))
def test_difficulty_weight_matches_paper_table(num_correct, expected):
    weight = difficulty_weight(torch.tensor(num_correct / 8))
    assert weight.item() == pytest.approx(expected, abs=0.005)


@pytest.mark.parametrize(
    ("p", "sigma", "expected"), [(0.5, 1.0, 1.0), (0.5, 2.5, 2.5), (0.25, 1.0, 0.75)]
)
def test_difficulty_weight_scales_with_sigma(p, sigma, expected):
    assert difficulty_weight(torch.tensor(p), sigma).item() == pytest.approx(expected)


# --- bonus ------------------------------------------------------------------------------------

# (correct, lengths, min_length, expected mask) for one group
BONUS_CASES = {
    "shortest_correct_gets_it": ([1, 1, 0, 1], [300, 200, 150, 250], 100, [0, 1, 0, 0]),
    "shorter_wrong_response_ignored": ([0, 1, 1, 0], [120, 400, 300, 110], 100, [0, 0, 1, 0]),
    "tie_goes_to_first": ([1, 1, 1, 0], [250, 200, 200, 300], 100, [0, 1, 0, 0]),
    "public_defect_no_correct_no_bonus": ([0, 0, 0, 0], [300, 200, 150, 250], 100, [0, 0, 0, 0]),
    "shortest_correct_too_short": ([1, 1, 0, 0], [80, 300, 150, 250], 100, [0, 0, 0, 0]),
    "length_equal_to_minimum_is_not_longer": ([1, 0], [100, 300], 100, [0, 0]),
    "single_correct_response": ([0, 0, 1, 0], [120, 110, 500, 130], 100, [0, 0, 1, 0]),
    "all_correct": ([1, 1, 1, 1], [400, 300, 350, 301], 100, [0, 1, 0, 0]),
    "zero_minimum": ([1, 1], [5, 3], 0, [0, 1]),
    "single_response_group": ([1], [150], 100, [1]),
}


@pytest.mark.parametrize(
    ("correct", "lengths", "min_length", "expected"), BONUS_CASES.values(), ids=BONUS_CASES
)
def test_bonus_mask(correct, lengths, min_length, expected):
    mask = bonus_mask(torch.tensor([correct]).bool(), torch.tensor([lengths]), min_length)
    assert mask.tolist() == [[bool(flag) for flag in expected]]


def test_bonus_mask_accepts_zero_one_correctness_per_group():
    correct = torch.tensor([[1, 0, 1], [0, 0, 0], [0, 1, 1]])
    lengths = torch.tensor([[300, 100, 200], [150, 150, 150], [500, 600, 700]])
    expected = [[False, False, True], [False, False, False], [False, True, False]]
    assert bonus_mask(correct, lengths, 100).tolist() == expected


# --- shape_advantages ---------------------------------------------------------------------------


def grpo(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The plain formula, as the reference."""
    return (rewards - rewards.mean(-1, keepdim=True)) / (rewards.std(-1, keepdim=True) + eps)


def test_both_switches_off_is_plain_grpo():
    rewards = torch.tensor([[1.5, 0.5, 1.0, 0.0], [0.5, 1.5, 1.5, 0.0]])
    correct = rewards >= 1.0
    lengths = torch.full_like(rewards, 200, dtype=torch.long)
    shaped = shape_advantages(rewards, correct, lengths, use_bonus=False, use_dynamic_weight=False)
    torch.testing.assert_close(shaped, grpo(rewards))


def test_bonus_is_added_to_raw_rewards_before_normalisation():
    rewards = torch.tensor([[1.5, 1.5, 0.5, 0.0]])
    correct = torch.tensor([[True, True, False, False]])
    lengths = torch.tensor([[400, 200, 300, 100]])
    shaped = shape_advantages(rewards, correct, lengths, use_dynamic_weight=False)
    torch.testing.assert_close(shaped, grpo(torch.tensor([[1.5, 1.7, 0.5, 0.0]])))
    assert shaped[0, 1] > shaped[0, 0]  # the shorter of two equally good answers is preferred


def test_dynamic_weight_scales_grpo_by_group_accuracy():
    rewards = torch.tensor([[1.5, 0.0, 1.5, 0.5], [1.5, 0.5, 0.5, 0.5]])
    correct = torch.tensor([[1, 0, 1, 0], [1, 0, 0, 0]])
    lengths = torch.full((2, 4), 50)
    shaped = shape_advantages(rewards, correct, lengths, use_bonus=False)
    weights = torch.tensor([[1.8], [4 * 1.8 * 0.25 * 0.75]])
    torch.testing.assert_close(shaped, grpo(rewards) * weights)


# (rewards, correct, length of every response): no response earns a bonus in these groups
IDENTICAL_CASES = {
    "all_correct_short": ([[1.5] * 8], [[1] * 8], 50),
    "all_wrong_with_format": ([[0.5] * 8], [[0] * 8], 300),
    "all_wrong_no_format": ([[0.0] * 8], [[0] * 8], 300),
    "public_defect_no_correct_no_bonus_to_response_0": ([[0.5] * 4], [[0] * 4], 300),
    "single_response_groups": ([[1.5], [0.0]], [[1], [0]], 50),
}


@pytest.mark.parametrize(
    ("rewards", "correct", "length"), IDENTICAL_CASES.values(), ids=IDENTICAL_CASES
)
@pytest.mark.parametrize("use_dynamic_weight", [True, False])
def test_identical_rewards_give_zero_advantages(rewards, correct, length, use_dynamic_weight):
    rewards, correct = torch.tensor(rewards), torch.tensor(correct)
    lengths = torch.full_like(correct, length)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on the std of one element
        shaped = shape_advantages(rewards, correct, lengths, use_dynamic_weight=use_dynamic_weight)
    assert torch.equal(shaped, torch.zeros_like(rewards))


def test_all_correct_group_with_bonus_is_zeroed_by_the_weight():
    rewards, correct, lengths = torch.full((1, 4), 1.5), torch.ones(1, 4), torch.full((1, 4), 300)
    assert shape_advantages(rewards, correct, lengths, use_dynamic_weight=False)[0, 0] > 0
    assert torch.equal(shape_advantages(rewards, correct, lengths), torch.zeros(1, 4))


def test_dtypes():
    correct = torch.tensor([[1, 0]])
    lengths = torch.tensor([[300, 300]])
    assert shape_advantages(torch.tensor([[1, 0]]), correct, lengths).dtype == torch.float32
    assert (
        shape_advantages(torch.tensor([[1.0, 0.0]], dtype=torch.float64), correct, lengths).dtype
        == torch.float64
    )


@pytest.mark.parametrize(
    "shapes", [((2, 4), (2, 4), (2, 3)), ((2, 4), (4, 2), (2, 4)), ((8,), (8,), (8,))], ids=str
)
def test_shape_mismatch_is_rejected(shapes):
    rewards, correct, lengths = (torch.zeros(shape) for shape in shapes)
    with pytest.raises(ValueError):
        shape_advantages(rewards, correct, lengths)


# --- properties ---------------------------------------------------------------------------------


@st.composite
def groups(draw):
    """(rewards float64, correct bool, lengths long), each (num_groups, G)."""
    num_groups = draw(st.integers(1, 4))
    size = draw(st.integers(1, 9))
    cells = num_groups * size
    correct = draw(st.lists(st.booleans(), min_size=cells, max_size=cells))
    noise = draw(
        st.lists(
            st.sampled_from([0.0, 0.5]) | st.floats(-2, 2, allow_subnormal=False),
            min_size=cells,
            max_size=cells,
        )
    )
    lengths = draw(st.lists(st.integers(0, 400), min_size=cells, max_size=cells))
    correct = torch.tensor(correct).view(num_groups, size)
    rewards = correct.double() + torch.tensor(noise, dtype=torch.float64).view(num_groups, size)
    return rewards, correct, torch.tensor(lengths).view(num_groups, size)


SWITCHES = st.fixed_dictionaries({"use_bonus": st.booleans(), "use_dynamic_weight": st.booleans()})


@settings(max_examples=150, deadline=None)
@given(groups(), SWITCHES)
def test_advantages_keep_shape_and_are_finite(batch, switches):
    rewards, correct, lengths = batch
    shaped = shape_advantages(rewards, correct, lengths, **switches)
    assert shaped.shape == rewards.shape
    assert torch.isfinite(shaped).all()


@settings(max_examples=150, deadline=None)
@given(groups(), st.booleans())
def test_advantages_sum_to_zero_per_group_before_weighting(batch, use_bonus):
    rewards, correct, lengths = batch
    shaped = shape_advantages(
        rewards, correct, lengths, use_bonus=use_bonus, use_dynamic_weight=False
    )
    torch.testing.assert_close(
        shaped.sum(-1), torch.zeros(len(rewards), dtype=shaped.dtype), atol=1e-6, rtol=0
    )


@settings(max_examples=150, deadline=None)
@given(groups())
def test_switches_off_equal_plain_grpo(batch):
    rewards, correct, lengths = batch
    shaped = shape_advantages(rewards, correct, lengths, use_bonus=False, use_dynamic_weight=False)
    if rewards.shape[-1] > 1:
        torch.testing.assert_close(shaped, grpo(rewards), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(shaped, group_normalise(rewards))


@settings(max_examples=150, deadline=None)
@given(groups())
def test_dynamic_weight_rescales_without_changing_signs(batch):
    rewards, correct, lengths = batch
    plain = shape_advantages(rewards, correct, lengths, use_dynamic_weight=False)
    weighted = shape_advantages(rewards, correct, lengths)
    assert (weighted * plain >= 0).all()
    assert (weighted.abs() <= 1.8 * plain.abs() + 1e-9).all()


@settings(max_examples=150, deadline=None)
@given(groups(), st.integers(0, 400))
def test_bonus_goes_to_at_most_one_shortest_correct_response(batch, min_length):
    _, correct, lengths = batch
    mask = bonus_mask(correct, lengths, min_length)
    assert (mask.sum(-1) <= 1).all()
    assert not (mask & ~correct).any()
    assert (lengths[mask] > min_length).all()
    for group in range(len(mask)):
        if mask[group].any():
            assert lengths[group][mask[group]] == lengths[group][correct[group]].min()


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 1), st.floats(0.1, 5))
def test_difficulty_weight_is_symmetric_and_bounded(p, sigma):
    p = torch.tensor(p, dtype=torch.float64)
    assert difficulty_weight(p, sigma).item() == pytest.approx(
        difficulty_weight(1 - p, sigma).item(), abs=1e-12
    )
    assert 0 <= difficulty_weight(p, sigma).item() <= sigma + 1e-12


# --- Dr. GRPO scaling -------------------------------------------------------------------------


def test_unscaled_advantages_are_centred_rewards_times_the_weight():
    rewards = torch.tensor([[1.0, 0.0, 0.5, 0.0], [2.0, 2.0, 2.0, 2.0]])
    correct = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1]])
    lengths = torch.full((2, 4), 50)
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    unscaled = group_normalise(rewards, scale=False)
    torch.testing.assert_close(unscaled, centred)
    shaped = shape_advantages(rewards, correct, lengths, use_bonus=False, scale=False)
    torch.testing.assert_close(shaped, centred * difficulty_weight(torch.tensor([[0.25], [1.0]])))
    scaled = shape_advantages(rewards, correct, lengths, use_bonus=False)
    assert not torch.allclose(scaled[0], shaped[0])  # std 0.48: dividing by it changes them
