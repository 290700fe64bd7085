"""Answer-balanced synthetic rows and the prior accuracy of a rows file."""

from __future__ import annotations

import json
import math
import random
from collections import Counter

import pytest
from typer.testing import CliRunner

from observe_r1.cli import app
from observe_r1.data.rows import InputError, read_rows
from observe_r1.data.synth import ALL_LEVELS, FAMILIES, STARTER_LEVELS, make_problem, synthesize
from observe_r1.data.synth.answers import answer_range, draw_with_answer, stratified
from observe_r1.evaluation.prior import best_constant, judged, prior_accuracy, stratum

STRATA = [(family, level) for family in FAMILIES for level in ALL_LEVELS]
SLOW_TO_REACH = {("arithmetic", 5), ("dice", 4), ("dice", 5)}  # answers rarer than 1e-4


@pytest.mark.parametrize(("family", "level"), STRATA)
def test_answer_range_holds_every_natural_draw(family, level):
    rng = random.Random(f"range:{family}:{level}")
    drawn = {FAMILIES[family](rng, level).answer for _ in range(2000)}
    assert drawn <= set(answer_range(family, level))


def _reach_every_answer(family, level):
    rng = random.Random(0)
    for answer in answer_range(family, level):
        assert draw_with_answer(family, rng, level, answer).answer == answer


@pytest.mark.parametrize(("family", "level"), sorted(set(STRATA) - SLOW_TO_REACH))
def test_every_answer_of_the_range_is_drawn(family, level):
    _reach_every_answer(family, level)


@pytest.mark.slow
@pytest.mark.parametrize(("family", "level"), sorted(SLOW_TO_REACH))
def test_every_rare_answer_of_the_range_is_drawn(family, level):
    _reach_every_answer(family, level)


def test_stratified_blocks_hold_each_value_once():
    values = list(range(7))
    sequence = [stratified(values, "k", i) for i in range(23)]
    assert sorted(sequence[:7]) == values and sorted(sequence[7:14]) == values
    assert max(Counter(sequence).values()) - min(Counter(sequence).values()) == 1
    assert sequence != [stratified(values, "other", i) for i in range(23)]


@pytest.mark.parametrize("levels", [STARTER_LEVELS, (1, 3, 5)])
def test_balanced_rows_hold_each_answer_equally_often_per_stratum(levels):
    families = sorted(FAMILIES)
    problems = [
        make_problem(4, "test", i, families, 0.25, levels, answers="balanced") for i in range(300)
    ]
    by_stratum = Counter((p.family, p.level, bool(p.choices), p.answer) for p in problems)
    rows = Counter((p.family, p.level, bool(p.choices)) for p in problems)
    for (family, level, choice), count in rows.items():
        answers = ("AB" if level in STARTER_LEVELS else "ABCD") if choice else None
        answers = answers or answer_range(family, level)
        counts = [by_stratum[(family, level, choice, a)] for a in answers]
        assert sum(counts) == count
        assert max(counts) - min(counts) <= 1, (family, level, choice, counts)
    per_stratum = Counter((p.family, p.level) for p in problems)
    for (family, level), m in per_stratum.items():  # spread evenly: floor(m / 4) per stratum
        assert rows[(family, level, True)] == m // 4
    for p in problems:
        if p.choices:
            assert p.choices["ABCD".index(p.answer)] == p.rationale.split()[-4]


def test_balanced_rows_depend_on_seed_split_and_index_only():
    first = make_problem(9, "test", 37, sorted(FAMILIES), 0.3, answers="balanced")
    again = make_problem(9, "test", 37, sorted(FAMILIES), 0.3, answers="balanced")
    assert first == again
    assert first != make_problem(9, "train", 37, sorted(FAMILIES), 0.3, answers="balanced")


def test_negative_gold_gets_options():
    rng = random.Random(0)
    problem = draw_with_answer("arithmetic", rng, 5, "-14")
    from observe_r1.data.synth.families import as_choice

    choice = as_choice(problem, rng, letter=2)
    assert choice.answer == "C" and choice.choices[2] == "-14" and len(set(choice.choices)) == 4


def test_prior_hand_made():
    rows = [
        {"family": "dice", "level": 1, "question": "q", "answer": "3"},
        {"family": "dice", "level": 1, "question": "q", "answer": "3.0"},
        {"family": "dice", "level": 1, "question": "q", "answer": "4"},
        {"family": "dice", "level": 2, "question": "q", "answer": "5"},
        {"family": "dice", "level": 1, "question": "q", "answer": "2", "choices": ["2", "9"]},
        {"family": "dice", "level": 1, "question": "q", "answer": "B", "choices": ["1", "2"]},
    ]
    report = prior_accuracy(rows)
    # dice 1 open: "3" matches "3" and "3.0" (2 of 3, 3 distinct golds); dice 2: 1 of 1;
    # dice 1 choice: golds A and B, one of 2
    assert report["prior_accuracy"] == pytest.approx((2 + 1 + 1) / 6)
    assert report["chance_accuracy"] == pytest.approx((3 / 3 + 1 + 2 / 2) / 6)
    assert report["prior_accuracy_by_level"] == {"1": pytest.approx(3 / 5), "2": 1.0}
    strata = {(s["level"], s["format"]): s for s in report["prior_strata"]}
    assert strata[("1", "open")]["best_answer"] == "3" and strata[("1", "choice")]["answers"] == 2
    assert stratum({"question": "q", "answer": "1"}) == ("all", "all", "open")
    assert best_constant(["7", "8", "8"]) == ("8", [False, True, True])
    assert judged("3", "3.0") and not judged("3", None) and not judged("A", "3")


def _expected_balanced_prior(rows) -> float:
    by_stratum = Counter(stratum(row) for row in rows)
    answers = {key: len({r["answer"] for r in rows if stratum(r) == key}) for key in by_stratum}
    return sum(math.ceil(m / answers[key]) for key, m in by_stratum.items()) / len(rows)


def test_balanced_600_row_test_set_has_its_prior_at_chance_and_natural_rows_do_not(tmp_path):
    train = synthesize(tmp_path, 600, seed=5, levels=STARTER_LEVELS, test_n=600)
    natural = prior_accuracy(read_rows(train).rows)
    test_rows = read_rows(tmp_path / "test.jsonl").rows
    balanced = prior_accuracy(test_rows)
    assert balanced["prior_accuracy"] == pytest.approx(_expected_balanced_prior(test_rows))
    assert balanced["prior_accuracy"] - balanced["chance_accuracy"] < 0.02  # rounding only
    assert natural["prior_accuracy"] - natural["chance_accuracy"] > 0.05


def test_synth_cli_prints_priors_and_the_prior_verb_reads_any_rows(tmp_path):
    out = tmp_path / "s"
    args = ["synth", "--out", str(out), "--n", "20", "--test-n", "20", "--levels", "starter"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "(20 rows, natural answers): prior accuracy" in result.stdout
    assert "(20 rows, balanced answers): prior accuracy" in result.stdout
    shown = CliRunner().invoke(app, ["prior", str(out / "test.jsonl")])
    assert shown.exit_code == 0, shown.output
    report = prior_accuracy(read_rows(out / "test.jsonl").rows)
    assert f"prior accuracy {report['prior_accuracy']:.3f}" in shown.stdout
    assert "| counting | -1 | open |" in shown.stdout
    both = CliRunner().invoke(app, [*args[:2], str(tmp_path / "b"), *args[3:], "--answers",
                                    "balanced", "--test-answers", "natural"])  # fmt: skip
    assert "(20 rows, balanced answers)" in both.stdout and "natural answers" in both.stdout


def test_bad_answers_option_and_bad_rows_are_one_error_line(tmp_path):
    out = tmp_path / "s"
    result = CliRunner().invoke(app, ["synth", "--out", str(out), "--n", "3", "--answers", "x"])
    assert result.exit_code == 2 and not out.exists()
    assert result.stderr.strip() == "error: --answers: 'x' is not natural or balanced"
    with pytest.raises(InputError, match="--test-answers"):
        synthesize(out, 3, test_n=2, test_answers="flat")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q"}) + "\n")
    shown = CliRunner().invoke(app, ["prior", str(bad)])
    assert shown.exit_code == 2 and shown.stderr.startswith(f"error: {bad}:1")
