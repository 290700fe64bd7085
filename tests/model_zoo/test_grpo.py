"""GRPO's policy math (model_zoo.grpo): the clipped surrogate's values and gradients, the
k3 KL estimator. group_normalise is tested with Observe-R1's shaping
(tests/observe_r1/training/test_shaping.py) and in tests/eager_llm/test_rl_rewards.py."""

from __future__ import annotations

import math

import pytest
import torch

from model_zoo.grpo import clipped_surrogate, k3_kl


def gradient(logps, old_logps, advantages, epsilon=0.2):
    logps = torch.tensor(logps, requires_grad=True)
    loss = clipped_surrogate(logps, torch.tensor(old_logps), torch.tensor(advantages), epsilon)
    loss.sum().backward()
    return loss.detach(), logps.grad


def test_at_ratio_one_the_loss_is_minus_the_advantage_and_descends_towards_it():
    loss, grad = gradient([-1.0, -2.0], [-1.0, -2.0], [2.0, -0.5])
    torch.testing.assert_close(loss, torch.tensor([-2.0, 0.5]))
    # gradient descent raises the log-probability of a positive advantage, lowers a negative
    torch.testing.assert_close(grad, torch.tensor([-2.0, 0.5]))


def test_the_clip_stops_the_gradient_beyond_the_trust_region():
    up, down = math.log(1.5), math.log(0.5)  # ratios 1.5 and 0.5, epsilon 0.2
    loss, grad = gradient([up, down, up, down], [0.0] * 4, [1.0, -1.0, -1.0, 1.0])
    # past 1 + eps with A > 0 and below 1 - eps with A < 0: clipped, no gradient
    torch.testing.assert_close(loss[:2], torch.tensor([-1.2, 0.8]))
    assert grad[0] == 0 and grad[1] == 0
    # the pessimistic side is never clipped: ratio * A keeps its gradient
    torch.testing.assert_close(loss[2:], torch.tensor([1.5, -0.5]))
    torch.testing.assert_close(grad[2:], torch.tensor([1.5, -0.5]))


def test_k3_is_zero_where_the_policies_agree_and_positive_elsewhere():
    logps = torch.tensor([-1.0, -1.0, -3.0])
    ref = torch.tensor([-1.0, -2.0, -1.0])
    kl = k3_kl(logps, ref)
    assert kl[0] == 0
    for d, value in zip([-1.0, 2.0], kl[1:], strict=True):
        assert value.item() == pytest.approx(math.exp(d) - d - 1)
    assert (kl[1:] > 0).all()


def test_k3_averages_to_the_kl_divergence_over_policy_samples():
    policy = torch.tensor([0.7, 0.2, 0.1])
    reference = torch.tensor([0.4, 0.4, 0.2])
    exact = (policy * (policy / reference).log()).sum()
    estimate = (policy * k3_kl(policy.log(), reference.log())).sum()  # expectation under policy
    torch.testing.assert_close(estimate, exact)
