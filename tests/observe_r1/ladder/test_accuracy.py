"""The ladder's sampled-accuracy table (``sampled_accuracy`` in ``OUT.stats.json``)."""

from __future__ import annotations

import pytest

from observe_r1.ladder import steps


def row(family, level, n_correct, n=8, tokens=40, choices=None):
    data = {"id": f"{family}-{level}-{n_correct}", "family": family, "level": level}
    if choices:
        data["choices"] = choices
    return steps.scored(data, [True] * n_correct + [False] * (n - n_correct), [tokens] * n, None)


def test_open_and_choice_rows_are_counted_apart_per_level_and_family():
    rows = [
        row("counting", -1, 6),
        row("counting", -1, 2, tokens=30),
        row("counting", 0, 0),
        row("dice", 0, 8),
        row("dice", 0, 4, choices=["1", "2"]),
    ]
    table = steps.sampled_accuracy(rows)
    open_, choice = table["open"], table["choice"]
    assert open_["all"] == {
        "rows": 4,
        "rollouts": 32,
        "correct": 16,
        "accuracy": 0.5,
        "rows_with_signal": 2,  # 6/8 and 2/8; 0/8 and 8/8 teach nothing
        "mean_tokens": 40.0 * 3 / 4 + 30.0 / 4,
    }
    assert open_["by_level"]["-1"]["accuracy"] == pytest.approx(0.5)
    assert open_["by_level"]["0"]["accuracy"] == pytest.approx(0.5)
    assert open_["by_family"]["counting"]["correct"] == 8
    assert open_["by_family_level"]["counting"]["0"]["rows_with_signal"] == 0
    assert open_["by_family_level"]["dice"] == {"0": open_["by_family"]["dice"]}
    assert choice["all"]["rows"] == 1 and choice["all"]["accuracy"] == 0.5


def test_levels_are_ordered_by_value_and_missing_fields_are_named():
    rows = [row("a", 3, 1), row("a", -1, 1), row("a", 10, 1), row(None, None, 1)]
    for data in rows[3:]:
        data.pop("family"), data.pop("level")
    table = steps.sampled_accuracy(rows)["open"]
    assert list(table["by_level"]) == ["-1", "3", "10", "none"]
    assert set(table["by_family"]) == {"a", "none"}


def test_an_empty_kind_has_no_accuracy():
    table = steps.sampled_accuracy([row("a", 1, 3)])
    assert table["choice"]["all"]["rows"] == 0 and table["choice"]["all"]["accuracy"] is None
    assert table["choice"]["by_level"] == {}
