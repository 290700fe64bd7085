"""The procedural source: determinism, balance, legibility, answers that match the drawing."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from observe_r1.ladder.steps import verifiable
from observe_r1.rows import read_rows
from observe_r1.synth import FAMILIES, make_problem, synthesize
from observe_r1.synth.families import LEVELS, counting, dice
from observe_r1.synth.render import COLORS, DESIGN, render


def files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_rows(tmp_path):
    first = synthesize(tmp_path / "a", 20, seed=7, test_n=5).parent
    second = synthesize(tmp_path / "b", 20, seed=7, test_n=5).parent
    other = synthesize(tmp_path / "c", 20, seed=8).parent
    assert files(first) == files(second)
    assert (first / "rows.jsonl").read_bytes() != (other / "rows.jsonl").read_bytes()


def test_rows_are_canonical_balanced_and_verifiable(tmp_path):
    path = synthesize(tmp_path, 50, seed=1)
    rows = read_rows(path).rows
    assert len(rows) == 50 and len({r["id"] for r in rows}) == 50
    pairs = [(r["family"], r["level"]) for r in rows]
    assert {pairs.count(pair) for pair in set(pairs)} == {2}  # 5 families x 5 levels, twice
    assert all(verifiable(row) for row in rows)
    assert any("choices" in row for row in rows)
    first = json.loads(path.read_text().splitlines()[0])
    assert first["image"] == f"images/{first['id']}.png"  # relative to the JSONL


def test_test_split_is_held_out(tmp_path):
    synthesize(tmp_path, 10, seed=0, test_n=10)
    train = read_rows(tmp_path / "rows.jsonl").rows
    test = read_rows(tmp_path / "test.jsonl").rows
    assert all(r["id"].startswith("test-") for r in test)
    images = {Path(r["image"]).read_bytes() for r in train}
    assert not any(Path(r["image"]).read_bytes() in images for r in test)


@pytest.mark.parametrize("size", [112, 224])
def test_image_size(tmp_path, size):
    rows = read_rows(synthesize(tmp_path, 5, image_size=size)).rows
    assert all(Image.open(r["image"]).size == (size, size) for r in rows)


def test_unknown_family_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown families"):
        synthesize(tmp_path, 3, families=["counting", "poetry"])


def _points(item):
    if "box" in item:
        x0, y0, x1, y1 = item["box"]
        return [(x0, y0), (x1, y1)]
    return [tuple(p) for p in item.get("points", [item.get("xy")])]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_scene_stays_inside_the_frame(family):
    for index in range(40):
        scene = make_problem(3, "train", index, [family], 0.0).scene
        for item in scene:
            assert all(-1 <= c <= DESIGN + 1 for p in _points(item) for c in p), item


@pytest.mark.parametrize("level", LEVELS)
def test_counting_answer_is_what_was_drawn(level):
    for seed in range(10):
        problem = counting(random.Random(seed), level)
        colour, shape = re.match(r"How many (\w+) (\w+)s are", problem.question).groups()
        targets = [i for i in problem.scene if i["fill"] == colour and i["shape"] == shape]
        assert len(targets) == int(problem.answer)
        # in the pixels too: one blob per object of that colour, nothing merged or lost
        pixels = np.asarray(render(problem.scene))
        mask = (pixels == COLORS[colour]).all(axis=2)
        same_colour = sum(item["fill"] == colour for item in problem.scene)
        assert ndimage.label(mask)[1] == same_colour


def test_harder_counting_levels_draw_more_and_closer_distractors():
    def stats(level):
        problems = [counting(random.Random(s), level) for s in range(30)]
        objects = np.mean([len(p.scene) for p in problems])
        return objects

    assert stats(1) < stats(3) < stats(5)
    for seed in range(20):  # level 1: distractors differ in shape and colour
        problem = counting(random.Random(seed), 1)
        colour, shape = re.match(r"How many (\w+) (\w+)s", problem.question).groups()
        others = [i for i in problem.scene if (i["fill"], i["shape"]) != (colour, shape)]
        assert all(i["fill"] != colour and i["shape"] != shape for i in others)


@pytest.mark.parametrize("level", LEVELS)
def test_dice_answer_is_the_drawn_pips(level):
    problem = dice(random.Random(level), level)
    assert sum(bool(item.get("pip")) for item in problem.scene) == int(problem.answer)


def test_arithmetic_answer_evaluates_the_drawn_expression():
    for index in range(25):
        problem = make_problem(0, "train", index, ["arithmetic"], 0.0)
        (text,) = [item["text"] for item in problem.scene]
        assert eval(text.removesuffix(" = ?")) == int(problem.answer)  # digits and + - * ( )


def test_chart_sum_and_geometry_rectangle_read_from_the_labels():
    for index in range(4, 60, 5):  # level 5 rows of the chart family
        problem = make_problem(0, "train", index, ["chart"], 0.0)
        labels = [int(i["text"]) for i in problem.scene if i["kind"] == "text" and i["xy"][1] < 92]
        assert problem.level == 5 and sum(labels) == int(problem.answer)
    for index in range(0, 50, 5):  # level 1 rows of geometry: rectangle perimeter
        problem = make_problem(0, "train", index, ["geometry"], 0.0)
        sides = [int(i["text"]) for i in problem.scene if i["kind"] == "text"]
        assert problem.level == 1 and 2 * sum(sides) == int(problem.answer)


def test_choice_variant_keeps_the_gold_value_behind_its_letter():
    for index in range(20):
        plain = make_problem(5, "train", index, sorted(FAMILIES), 0.0)
        choice = make_problem(5, "train", index, sorted(FAMILIES), 1.0)
        assert choice.question == plain.question  # bare: options are lettered when asked
        assert len(set(choice.choices)) == 4
        assert choice.choices["ABCD".index(choice.answer)] == plain.answer


def test_captions_and_rationales_state_what_is_drawn_and_the_answer():
    from observe_r1.synth import FAMILIES, make_problem

    for index in range(50):
        problem = make_problem(3, "train", index, list(FAMILIES), choice_share=0.3)
        assert problem.caption and problem.rationale
        if problem.choices:
            gold = problem.choices["ABCD".index(problem.answer)]
            assert problem.rationale.endswith(f"The value {gold} is option {problem.answer}.")
        else:
            assert problem.rationale.endswith(f"The answer is {problem.answer}.")
        if problem.family == "counting" and not problem.choices:
            target = problem.question.removeprefix("How many ").removesuffix(" are in the image?")
            assert f"{problem.answer} {target}" in problem.caption or problem.answer == "1"
