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
from observe_r1.data.rows import InputError, read_rows
from observe_r1.data.synth import FAMILIES, STARTER_LEVELS, make_problem, parse_levels, synthesize
from observe_r1.data.synth.families import LEVELS, counting, dice
from observe_r1.data.synth.render import COLORS, DESIGN, render
from observe_r1.ladder.steps import verifiable


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
    from observe_r1.data.synth import FAMILIES, make_problem

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

LEVELS_1_TO_5_DIGEST = "8321e98fc0f7937ec65a43ecd53fc0195ba849bd633eed1b6af935530fe30588"


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


@pytest.mark.parametrize(("level", "largest", "radius"), [(-1, 2, 14), (0, 3, 9)])
def test_starter_counting_is_few_objects_alone_recounted_in_scene_and_pixels(
    level, largest, radius
):
    counts = set()
    for problem in starter("counting", level):
        colour, shape = re.match(r"How many (\w+) (\w+)s are", problem.question).groups()
        targets = [i for i in problem.scene if i["fill"] == colour and i["shape"] == shape]
        assert len(targets) == len(problem.scene) == int(problem.answer) <= largest  # alone
        counts.add(len(targets))
        for item in problem.scene:  # radius 14 (-1), 9 (0); level 1-5 objects: 6
            xs = [x for x, _ in _points(item)]
            assert max(xs) - min(xs) == pytest.approx(2 * radius)
        pixels = np.asarray(render(problem.scene))
        mask = (pixels == COLORS[colour]).all(axis=2)
        assert ndimage.label(mask)[1] == len(problem.scene)  # none merged or lost
    assert counts == set(range(1, largest + 1))


def test_starter_counting_objects_shrink_from_level_minus_1_to_level_1():
    def mean_area(level):
        return np.mean(
            [(np.asarray(render(p.scene)) != 255).any(axis=2).sum() / len(p.scene)
             for p in starter("counting", level)]
        )  # fmt: skip

    assert mean_area(-1) > 2 * mean_area(0) > 4 * mean_area(1)


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


@pytest.mark.parametrize(("level", "counts"), [(-1, {2, 3}), (0, {2, 3, 4})])
def test_starter_dice_asks_how_many_dice_recounted_from_faces_and_pixels(level, counts):
    seen = set()
    for problem in starter("dice", level):
        faces = [i for i in problem.scene if i.get("outline") == "black"]
        pips = [i for i in problem.scene if i.get("pip")]
        assert problem.question == "How many dice are in the image?"
        assert len(faces) == int(problem.answer) in counts
        seen.add(len(faces))
        assert all(_points(f)[1][0] - _points(f)[0][0] == 26 for f in faces)  # levels' size
        shown = [  # pips inside each face, in the caption's order
            sum(_inside(p, f) for p in pips) for f in faces
        ]
        assert all(1 <= n <= 6 for n in shown) and sum(shown) == len(pips)
        assert problem.caption == f"{len(faces)} dice showing {', '.join(map(str, shown))}."
        white = (np.asarray(render(problem.scene)) == COLORS["white"]).all(axis=2)
        dice_drawn = ndimage.binary_fill_holes(~white)  # outline, face and pips: one blob
        assert ndimage.label(dice_drawn)[1] == len(faces)  # none overlap or touch
    assert seen == counts


def _inside(item, face) -> bool:
    (x0, y0), (x1, y1) = _points(face)
    (px0, py0), (px1, py1) = _points(item)
    return x0 < px0 and px1 < x1 and y0 < py0 and py1 < y1


@pytest.mark.parametrize(("level", "counts"), [(-1, {2, 3}), (0, {2, 3, 4})])
def test_starter_chart_asks_how_many_bars_recounted_from_bars_labels_and_pixels(level, counts):
    seen = set()
    for problem in starter("chart", level):
        bars = [i for i in problem.scene if i["kind"] == "rectangle"]
        assert problem.question == "How many bars are in the chart?"
        assert len(bars) == int(problem.answer) in counts
        seen.add(len(bars))
        days = [i["text"] for i in problem.scene if i["kind"] == "text" and i["xy"][1] > 92]
        assert days == [str(d) for d in range(1, len(bars) + 1)] + ["day"]
        assert problem.caption.startswith(f"A bar chart of {len(bars)} days with day 1: ")
        blue = (np.asarray(render(problem.scene)) == COLORS["blue"]).all(axis=2)
        assert ndimage.label(blue)[1] == len(bars)
        heights = [round((92 - b["box"][1]) / 7.5) for b in bars]  # each bar's value label
        values = [i["text"] for i in problem.scene if i["kind"] == "text" and i["xy"][1] < 92]
        assert values == [str(h) for h in heights] and len(set(heights)) == len(heights)
    assert seen == counts


@pytest.mark.parametrize(("level", "counts"), [(-1, {2, 3}), (0, {2, 3, 4})])
def test_starter_geometry_asks_how_many_triangles_recounted_from_scene_and_pixels(level, counts):
    seen = set()
    for problem in starter("geometry", level):
        triangles = [i for i in problem.scene if i.get("shape") == "triangle"]
        assert len(triangles) == len(problem.scene) == int(problem.answer) in counts
        assert all(len(t["points"]) == 3 and "fill" not in t for t in triangles)  # outlines
        seen.add(len(triangles))
        ink = (np.asarray(render(problem.scene)) != COLORS["white"]).any(axis=2)
        assert ndimage.label(ink)[1] == len(triangles)  # apart: none touch
        assert problem.caption == f"{problem.answer} triangles."
    assert seen == counts


def test_starter_changes_keep_levels_1_to_5_identical():
    """Starter levels share helpers with levels 1-5 (dice layout, chart drawing): a digest
    of 100 level 1-5 problems (scenes, questions, answers, captions, recorded before the
    starter redesign) fails if those helpers change what levels 1-5 draw or ask."""
    import dataclasses
    import hashlib

    problems = [make_problem(7, "train", i, sorted(FAMILIES), 0.3) for i in range(100)]
    text = json.dumps([dataclasses.asdict(p) for p in problems], sort_keys=True)
    assert hashlib.sha256(text.encode()).hexdigest() == LEVELS_1_TO_5_DIGEST


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
        if problem.family in ("dice", "geometry"):  # how many dice, triangles: the caption says
            assert problem.caption.startswith(f"{problem.answer} ")
