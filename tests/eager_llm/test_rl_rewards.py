"""Stage 3's rewards and advantages (eager_llm.rl.rewards) on scripted rankings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eager_llm.baselines.markov import transition_counts
from eager_llm.rl.rewards import (
    RewardWeights,
    beam_rewards,
    cooccurrence_rewards,
    group_advantages,
    hit_rewards,
    rank_penalties,
)

D = [1 / math.log2(rank + 2) for rank in range(4)]  # NDCG discounts of ranks 0..3


def test_hit_reward_marks_the_next_item():
    assert hit_rewards([5, 3, 7, 9], 7).tolist() == [0, 0, 1, 0]
    assert hit_rewards([5, 3, 7, 9], 8).tolist() == [0, 0, 0, 0]


def test_rank_penalties_price_each_wrong_beam_by_its_rank():
    total = sum(D)
    expected = [-D[0] / total, -D[1] / total, 0.0, -D[3] / total]
    torch.testing.assert_close(rank_penalties([5, 3, 7, 9], 7), torch.tensor(expected))
    # a wrong item ranked above the next item costs more than one ranked below it
    assert rank_penalties([5, 7], 7)[0] < rank_penalties([7, 5], 7)[1] < 0


def test_rank_penalties_are_zero_without_a_hit():
    assert rank_penalties([5, 3, 7, 9], 2).tolist() == [0, 0, 0, 0]


def test_a_short_group_is_penalised_on_the_scale_of_the_configured_group():
    total = sum(D)
    penalties = rank_penalties([5, 7], 7, group_size=4)
    torch.testing.assert_close(penalties, torch.tensor([-D[0] / total, 0.0]))


def test_cooccurrence_is_the_next_item_probability_after_the_last_item():
    train = [np.array([0, 1, 2]), np.array([0, 1]), np.array([0, 2])]
    transitions = transition_counts(train, 3)
    scores = cooccurrence_rewards(transitions, [(2, 0), (0, 1)], [[1, 2, 0], [2, 0]])
    torch.testing.assert_close(scores[0], torch.tensor([2 / 3, 1 / 3, 0.0]))
    torch.testing.assert_close(scores[1], torch.tensor([1.0, 0.0]))


def test_beam_rewards_weigh_the_three_terms():
    beams, targets = [[5, 3, 7, 9], [1, 2, 4, 6]], [7, 0]
    cooc = [torch.tensor([0.5, 0.0, 0.25, 0.0]), torch.tensor([0.0, 0.0, 0.0, 1.0])]
    rewards = beam_rewards(beams, targets, RewardWeights(2.0, 0.5, 0.1), 4, cooc)
    expected = 2.0 * hit_rewards(beams[0], 7) + 0.5 * rank_penalties(beams[0], 7) + 0.1 * cooc[0]
    torch.testing.assert_close(rewards[0], expected)
    torch.testing.assert_close(rewards[1], torch.tensor([0.0, 0.0, 0.0, 0.1]))
    no_cooc = beam_rewards(beams, targets, RewardWeights(2.0, 0.5, 0.1), 4)
    torch.testing.assert_close(no_cooc[0], expected - 0.1 * cooc[0])


def test_advantages_are_the_group_normalised_rewards():
    [advantages] = group_advantages([torch.tensor([1.0, 0.0, 0.0, 0.0])])
    # mean 0.25, unbiased std 0.5
    torch.testing.assert_close(advantages, torch.tensor([1.5, -0.5, -0.5, -0.5]), atol=1e-5, rtol=0)


def test_a_group_of_equal_rewards_has_no_advantage():
    equal, single = group_advantages([torch.zeros(4), torch.tensor([0.3])])
    assert equal.tolist() == [0, 0, 0, 0] and single.tolist() == [0]


def test_groups_of_different_sizes_are_normalised_apart():
    short, long = group_advantages([torch.tensor([1.0, 0.0]), torch.tensor([3.0, 1.0, 2.0])])
    torch.testing.assert_close(short, torch.tensor([0.7071, -0.7071]), atol=1e-4, rtol=0)
    torch.testing.assert_close(long, torch.tensor([1.0, -1.0, 0.0]), atol=1e-5, rtol=0)


def test_a_scripted_ranking_favours_the_hit_and_blames_the_top_wrong_item():
    """Beams best first: two wrong items, the next item, a wrong one."""
    [rewards] = beam_rewards([[5, 3, 7, 9]], [7], RewardWeights(), 4)
    [advantages] = group_advantages([rewards])
    assert advantages.argmax() == 2 and advantages.argmin() == 0
    assert advantages[0] < advantages[1] < advantages[3] < 0 < advantages[2]
    assert advantages.sum().item() == pytest.approx(0, abs=1e-5)
