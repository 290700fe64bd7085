"""The builder's model-free rules, on hand-made rows and synthetic rollout statistics."""

from __future__ import annotations

import random

import numpy as np
import pytest

from observe_r1.ladder import steps


def row(answer, question="q?", **extra):
    return {"question": question, "answer": answer, "image": "x.png", **extra}


@pytest.mark.parametrize(
    "answer, question, extra, expected",
    [
        ("7", "q?", {}, True),
        ("-0.5", "q?", {}, True),
        ("3/4", "q?", {}, True),
        ("\\frac{3}{4}", "q?", {}, True),
        ("$12$", "q?", {}, True),
        ("2\\sqrt{3}", "q?", {}, True),  # an expression math-verify reads
        ("B", "q?", {"choices": ["1", "2"]}, True),
        ("B", "Which?\nA. 1\nB. 2", {}, True),  # options listed in the question
        ("B", "Which point is B?", {}, False),  # a bare letter, no options
        ("yes", "q?", {}, False),
        ("a" * 80, "q?", {}, False),
        ("", "q?", {}, False),
    ],
)
def test_verifiable(answer, question, extra, expected):
    assert steps.verifiable(row(answer, question, **extra)) is expected


def test_words_only_with_allow_words_and_short():
    assert steps.verifiable(row("yes"), allow_words=True)
    assert steps.verifiable(row("dark red"), allow_words=True)
    assert not steps.verifiable(row("New York City"), allow_words=True)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<answer>7</answer>", True),
        ("7", True),
        (" 7 ", True),
        ("8", False),
        ("It is <answer>7", True),
        ("<answer>8</answer>", False),
    ],
)
def test_answer_only_correct(text, expected):
    assert steps.answer_only_correct(text, "7") is expected


def test_response_correct_needs_one_answer_block():
    assert steps.response_correct("<think>x</think><answer>7</answer>", "7")
    assert not steps.response_correct("the answer is 7", "7")


def test_scored_fields():
    scored = steps.scored(row("7", id="r"), [True, False, False, True], [10, 20, 30, 40], False)
    assert scored["difficulty"] == 0.5 and scored["difficulty_level"] == 2
    assert scored["complexity"] == scored["mean_tokens"] == 25
    assert (scored["n_correct"], scored["n_rollouts"], scored["greedy_correct"]) == (2, 4, False)
    assert scored["id"] == "r" and scored["answer"] == "7"


def rated(difficulty, complexity, **extra):
    return {"difficulty": difficulty, "complexity": complexity, **extra}


def test_sort_by_difficulty_then_complexity():
    rows = [rated(0.5, 10), rated(0, 30), rated(0.5, 5), rated(0, 20)]
    assert [(r["difficulty"], r["complexity"]) for r in steps.sort_rows(rows)] == [
        (0, 20),
        (0, 30),
        (0.5, 5),
        (0.5, 10),
    ]


def test_drop_easy_by_quantile_or_absolute_tokens():
    rows = [rated(0, c) for c in (10, 20, 30, 40, 50)] + [rated(0.25, 1)]
    kept, dropped, threshold = steps.drop_easy(rows)  # 25th percentile of 10..50 = 20
    assert (dropped, threshold) == (1, 20.0)
    assert rated(0.25, 1) in kept  # only difficulty 0 is ever dropped
    kept, dropped, threshold = steps.drop_easy(rows, min_tokens=35)
    assert (dropped, threshold, len(kept)) == (3, 35.0, 3)
    assert steps.drop_easy([rated(0.5, 1)]) == ([rated(0.5, 1)], 0, None)


def test_unsolved_rows_are_flagged_not_dropped():
    flagged = steps.flag_unsolved([rated(1, 5), rated(0.875, 5)])
    assert [r["needs_review"] for r in flagged] == [True, False]


def levelled(counts):
    return [
        {"difficulty_level": level, "n": i}
        for level, count in enumerate(counts)
        for i in range(count)
    ]


def test_mixing_own_share_on_1000_rows_over_9_levels():
    rows = levelled([15, 40, 60, 90, 120, 140, 160, 180, 195])  # the paper's rising shape
    assert len(rows) == 1000
    buckets = steps.mix_levels(rows, random.Random(1), own_share=0.6, spread=2)
    assert [b.level for b in buckets] == sorted(b.level for b in buckets)  # easy -> hard
    assert all(abs(b.own_share - 0.6) <= 0.05 for b in buckets), [b.own_share for b in buckets]
    mixed = [r for b in buckets for r in b.rows]
    assert sorted(map(id, mixed)) == sorted(map(id, rows))  # every row exactly once
    for bucket in buckets:
        assert all(abs(r["difficulty_level"] - bucket.level) <= 2 for r in bucket.rows)
        assert abs(len(bucket.rows) - sum(r["difficulty_level"] == bucket.level for r in rows)) <= 2
    levels = [r["difficulty_level"] for r in mixed]
    assert levels != sorted(levels)  # mixed, not strictly sorted ...
    means = [np.mean([r["difficulty_level"] for r in b.rows]) for b in buckets]
    assert means == sorted(means)  # ... but still easy -> hard


@pytest.mark.parametrize("own_share", [0.5, 0.7])
def test_mixing_follows_the_configured_share(own_share):
    buckets = steps.mix_levels(levelled([120] * 9), random.Random(2), own_share=own_share)
    assert all(abs(b.own_share - own_share) <= 0.05 for b in buckets)


def test_mixing_with_own_share_1_is_the_sorted_order_and_seeded():
    rows = levelled([5, 7, 3])
    buckets = steps.mix_levels(rows, random.Random(0), own_share=1.0)
    assert [r["difficulty_level"] for b in buckets for r in b.rows] == [0] * 5 + [1] * 7 + [2] * 3
    again = [steps.mix_levels(levelled([50] * 5), random.Random(9)) for _ in range(2)]
    assert [[r["n"] for r in b.rows] for b in again[0]] == [
        [r["n"] for r in b.rows] for b in again[1]
    ]


def test_a_lone_level_keeps_its_rows():
    buckets = steps.mix_levels(levelled([10, 0, 0, 0, 20]), random.Random(0))
    assert [(b.level, len(b.rows), b.own_share) for b in buckets] == [(0, 10, 1.0), (4, 20, 1.0)]


def test_transport_plan_places_every_spare_row():
    plan = steps.transport_plan([0, 1, 2, 3, 8], [40, 40, 40, 3, 30], spread=2)
    assert plan.sum(axis=1).tolist() == [40, 40, 40, 3, 30]
    assert plan[4, 4] == 30  # level 8 has no neighbour within 2: its rows stay home
    assert plan[0, 0] == 0 and plan[0, 3] == 0  # never itself while neighbours take; never > 2 away


def test_sample_in_order_keeps_file_order():
    rows = [{"n": i} for i in range(100)]
    sample = steps.sample_in_order(rows, 30, random.Random(0))
    assert len(sample) == 30 and [r["n"] for r in sample] == sorted(r["n"] for r in sample)
    assert steps.sample_in_order(rows, None, random.Random(0)) == rows
    assert steps.sample_in_order(rows, 500, random.Random(0)) == rows


def test_level_profile_shares_and_complexity():
    rows = [
        {"difficulty_level": 0, "complexity": 10},
        {"difficulty_level": 2, "complexity": 30},
        {"difficulty_level": 2, "complexity": 50},
        {"difficulty_level": 4, "complexity": 90},
    ]
    profile = steps.level_profile(rows, 4)
    assert [p["rows"] for p in profile] == [1, 0, 2, 0, 1]
    assert [p["share"] for p in profile] == [0.25, 0, 0.5, 0, 0.25]
    assert [p["mean_complexity"] for p in profile] == [10, None, 40, None, 90]
    assert [p["difficulty"] for p in profile] == [0, 0.25, 0.5, 0.75, 1]


def test_level_spearman():
    rows = [{"level": lv, "difficulty": d} for lv, d in [(1, 0.0), (2, 0.25), (3, 0.5), (4, 1.0)]]
    assert steps.level_spearman(rows) == pytest.approx(1.0)
    assert steps.level_spearman([{**r, "difficulty": 1.0} for r in rows]) is None  # constant
    assert steps.level_spearman([{"difficulty": 0.5}] * 5) is None  # no intrinsic level
