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
from typer.testing import CliRunner

from observe_r1.cli import app
from observe_r1.ladder.steps import verifiable
from observe_r1.rows import InputError, read_rows
from observe_r1.synth import FAMILIES, STARTER_LEVELS, make_problem, parse_levels, synthesize
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


# starter levels (-1, 0) ---------------------------------------------------------------


def starter(family, level, count=30, choice_share=0.0, seed=4):
    return [
        make_problem(seed, "train", index, [family], choice_share, levels=[level])
        for index in range(count)
    ]


def test_default_levels_are_still_1_to_5_and_starter_levels_lie_below():
    assert tuple(LEVELS) == (1, 2, 3, 4, 5) and parse_levels(None) == (1, 2, 3, 4, 5)
    assert STARTER_LEVELS == (-1, 0) and max(STARTER_LEVELS) < min(LEVELS)
    plain = [make_problem(2, "train", i, sorted(FAMILIES), 0.3) for i in range(20)]
    explicit = [make_problem(2, "train", i, sorted(FAMILIES), 0.3, LEVELS) for i in range(20)]
    assert plain == explicit


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("starter", (-1, 0)),
        ("all", (-1, 0, 1, 2, 3, 4, 5)),
        ("starter,1:5", (-1, 0, 1, 2, 3, 4, 5)),
        ("-1:1", (-1, 0, 1)),
        ("0, 3, 0", (0, 3)),
        ("", (1, 2, 3, 4, 5)),
    ],
)
def test_parse_levels(text, levels):
    assert parse_levels(text) == levels


@pytest.mark.parametrize(("text", "reason"), [("7", "unknown levels"), ("two", "not a level")])
def test_parse_levels_refuses_what_is_no_level(text, reason):
    with pytest.raises(InputError, match=f"--levels: .*{reason}"):
        parse_levels(text)


def test_synthesize_refuses_unknown_levels(tmp_path):
    with pytest.raises(InputError, match="--levels: unknown levels"):
        synthesize(tmp_path, 3, levels=[0, 6])


def test_cli_levels_writes_starter_rows_and_defaults_to_1_to_5(tmp_path):
    def synth(name, n, *levels):
        args = ["synth", "--out", str(tmp_path / name), "--n", str(n), "--seed", "3", *levels]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        return read_rows(tmp_path / name / "rows.jsonl").rows

    starter_rows = synth("s", 20, "--levels", "starter")
    assert len(starter_rows) == 20 and {r["level"] for r in starter_rows} == {-1, 0}
    assert all(verifiable(row) for row in starter_rows)
    mixed = synth("m", 35, "--levels", "starter,1:5")  # 5 families x 7 levels
    assert {r["level"] for r in mixed} == set(range(-1, 6))
    default = synth("d", 25)
    assert {r["level"] for r in default} == {1, 2, 3, 4, 5}
    python = synthesize(tmp_path / "p", 25, seed=3)  # the CLI's default: synthesize's
    assert (tmp_path / "d" / "rows.jsonl").read_bytes() == python.read_bytes()


@pytest.mark.parametrize(
    ("value", "reason"),
    [("7", "unknown levels [7]"), ("two", "'two' is not a level"), ("3:1", "empty range")],
)
def test_cli_bad_levels_is_one_error_line_exit_2_and_nothing_written(tmp_path, value, reason):
    out = tmp_path / "s"
    result = CliRunner().invoke(app, ["synth", "--out", str(out), "--n", "3", "--levels", value])
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: --levels: ") and reason in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_starter_rows_are_canonical_balanced_verifiable_and_rendered(tmp_path):
    path = synthesize(tmp_path, 40, seed=2, levels=STARTER_LEVELS, choice_share=0.5, test_n=10)
    rows = read_rows(path).rows
    pairs = [(r["family"], r["level"]) for r in rows]
    assert {pairs.count(pair) for pair in set(pairs)} == {4}  # 5 families x 2 levels, 4 times
    assert all(verifiable(row) for row in rows)
    assert all(Image.open(r["image"]).size == (112, 112) for r in rows)
    assert {len(r["choices"]) for r in rows if "choices" in r} == {2}  # two-option choices
    assert {r["level"] for r in read_rows(tmp_path / "test.jsonl").rows} == {-1, 0}


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("level", STARTER_LEVELS)
def test_starter_scenes_stay_inside_the_frame(family, level):
    for problem in starter(family, level, count=40):
        for item in problem.scene:
            assert all(-1 <= c <= DESIGN + 1 for p in _points(item) for c in p), item


@pytest.mark.parametrize("level", STARTER_LEVELS)
def test_starter_counting_is_few_large_objects_recounted_in_scene_and_pixels(level):
    for problem in starter("counting", level):
        colour, shape = re.match(r"How many (\w+) (\w+)s are", problem.question).groups()
        targets = [i for i in problem.scene if i["fill"] == colour and i["shape"] == shape]
        assert len(targets) == int(problem.answer) <= (2 if level == -1 else 3)
        others = [i for i in problem.scene if i not in targets]
        assert not others if level == -1 else len(others) <= 2
        assert all(i["fill"] != colour and i["shape"] != shape for i in others)
        assert all(_points(i)[1][0] - _points(i)[0][0] > 23.9 for i in problem.scene if "box" in i)
        pixels = np.asarray(render(problem.scene))
        mask = (pixels == COLORS[colour]).all(axis=2)
        assert ndimage.label(mask)[1] == sum(i["fill"] == colour for i in problem.scene)


@pytest.mark.parametrize(("level", "largest"), [(-1, 5), (0, 9)])
def test_starter_arithmetic_is_a_one_digit_sum_of_the_drawn_expression(level, largest):
    for problem in starter("arithmetic", level):
        (item,) = problem.scene
        expression = item["text"].removesuffix(" = ?")
        a, b = map(int, expression.split(" + "))
        assert a >= 1 and b >= 1 and a + b == int(problem.answer) <= largest
        assert item["text"] in problem.caption


def _ink_height(scene) -> int:
    """Rows of the rendered 112 px image that hold dark (text) pixels."""
    dark = (np.asarray(render(scene)) < 100).all(axis=2)
    return int(dark.any(axis=1).sum())


def test_starter_arithmetic_font_is_larger_than_level_1():
    level_1 = np.mean([_ink_height(p.scene) for p in starter("arithmetic", 1, count=10)])
    for level, factor in [(0, 1.4), (-1, 2.0)]:
        heights = [_ink_height(p.scene) for p in starter("arithmetic", level, count=10)]
        assert min(heights) >= factor * level_1, (level, heights, level_1)
        assert min(heights) >= 19  # digits span more than one 14 px DINOv2 patch


@pytest.mark.parametrize(("level", "largest"), [(-1, 3), (0, 6)])
def test_starter_dice_is_one_large_die_and_its_pips(level, largest):
    values = set()
    for problem in starter("dice", level):
        faces = [i for i in problem.scene if i.get("outline") == "black"]
        pips = [i for i in problem.scene if i.get("pip")]
        assert len(faces) == 1 and len(pips) == int(problem.answer) <= largest
        (x0, _), (x1, _) = _points(faces[0])
        assert x1 - x0 == 52  # twice the 26-unit die of levels 1-5
        values.add(len(pips))
    assert values == set(range(1, largest + 1))


@pytest.mark.parametrize(("level", "bars"), [(-1, 1), (0, 2)])
def test_starter_chart_answer_is_the_label_of_the_bar_asked(level, bars):
    for problem in starter("chart", level):
        boxes = [i for i in problem.scene if i["kind"] == "rectangle"]
        assert len(boxes) == bars
        day = int(re.match(r"What is the value for day (\d)\?", problem.question).group(1))
        centre = (boxes[day - 1]["box"][0] + boxes[day - 1]["box"][2]) / 2
        labels = [i for i in problem.scene if i["kind"] == "text" and i["size"] > 10]
        (label,) = [i for i in labels if abs(i["xy"][0] - centre) < 1e-9]
        assert label["text"] == problem.answer
        top = boxes[day - 1]["box"][1]
        assert round((92 - top) / 7.5) == int(problem.answer)  # the bar's height says it too


@pytest.mark.parametrize(("level", "sides"), [(-1, {3, 4}), (0, {3, 4, 5, 6})])
def test_starter_geometry_counts_the_drawn_sides(level, sides):
    seen = set()
    for problem in starter("geometry", level):
        (polygon,) = problem.scene
        assert len(polygon["points"]) == polygon["sides"] == int(problem.answer)
        seen.add(polygon["sides"])
        ys = sorted(y for _, y in polygon["points"])
        assert abs(ys[-1] - ys[-2]) < 1e-9  # a flat bottom edge
        mask = (np.asarray(render(problem.scene)) == COLORS[polygon["fill"]]).all(axis=2)
        assert mask.mean() > 0.15  # drawn large: a level-1 counting object covers ~0.01
    assert seen == sides


def test_starter_choices_have_two_options_with_the_gold_behind_its_letter():
    for index in range(20):
        plain = make_problem(5, "train", index, sorted(FAMILIES), 0.0, STARTER_LEVELS)
        choice = make_problem(5, "train", index, sorted(FAMILIES), 1.0, STARTER_LEVELS)
        assert len(choice.choices) == 2 and len(set(choice.choices)) == 2
        assert choice.choices["AB".index(choice.answer)] == plain.answer


def test_starter_captions_and_rationales_state_what_is_drawn_and_the_answer():
    for index in range(40):
        problem = make_problem(3, "train", index, list(FAMILIES), 0.0, STARTER_LEVELS)
        assert problem.rationale.endswith(f"The answer is {problem.answer}.")
        assert " 1 days" not in problem.caption and not problem.caption.startswith("A o")
        if problem.family == "dice":
            assert problem.caption == f"1 die showing {problem.answer}."
