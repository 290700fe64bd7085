"""Procedural question families: each draws a scene and knows the answer it drew.

A family is ``f(rng, level) -> Problem`` with ``level`` 1 (easy) to 5 (hard), or one of the
`STARTER_LEVELS` -1 and 0 below them; the level sets the family's difficulty knobs:

- ``counting``: count one colour-shape among distractors. More targets and distractors
  with the level; from level 2 distractors share the shape, from level 3 also the colour.
- ``arithmetic``: evaluate the expression written in the image: ``a + b`` (1), two-digit
  ``+``/``-`` (2), ``a * b`` (3), ``a + b * c`` (4), ``(a + b) * c - d`` (5); ``*`` since Pillow's
  bundled font has no ``×``.
- ``dice``: the total of the dots on ``level + 1`` dice.
- ``chart``: a bar or line chart of ``level + 2`` labelled values; read one value (1), the
  day of the maximum (2), the difference of two days (3), maximum minus minimum (4), the
  sum (5).
- ``geometry``: rectangle perimeter (1) and area (2), the missing angle of a triangle (3),
  the area of a right triangle (4), its hypotenuse (5); labels on the drawn figure, and
  figures drawn to scale (rectangles within an aspect ratio of 1:3 to 3:1).

The starter levels are for a weak model (the offline default solves ~5 % of sampled
attempts at levels 1-5). Its responses repeat the caption templates it learned in ``observe-r1
align`` on levels 1-5 ("N dice showing ...", "A bar chart of N days ..."), read no digits
and count only a few objects; so, but for arithmetic, the starter question of each family
is a count the learned caption already states (starter probe,
``results/observe_r1_starter_probe.md``), and choices have two options:

- ``counting``: one colour-shape alone, no distractors: 1-2 drawn large (radius 14) on a
  3 x 3 grid (-1); 1-3 of radius 9 on a 4 x 4 grid (0; level 1: radius 6 on 6 x 6).
- ``arithmetic``: ``a + b`` with a sum of at most 5 in a 40-unit font (-1); a one-digit sum
  ``a + b = ?`` (sum <= 9) in a 28-unit font (0) (level 1's 18-unit font is ~13 px at 112 px,
  under one 14 px DINOv2 patch per digit).
- ``dice``: how many dice: 2-3 (-1) or 2-4 (0) dice of the levels' size, 1-6 pips each.
- ``chart``: how many bars: a level-1 bar chart of 2-3 (-1) or 2-4 (0) days.
- ``geometry``: how many triangles: 2-3 (-1) or 2-4 (0) black outline triangles.

Scenes are lists of `observe_r1.data.synth.render` primitives in the 112-unit design frame.
Counted objects (the starter triangles too) carry a ``shape`` tag and dice pips a ``pip``
tag, so tests can recount them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace

SHAPES = ("circle", "square", "triangle")
OBJECT_COLORS = ("red", "blue", "green", "orange", "purple")
LEVELS = range(1, 6)
STARTER_LEVELS = (-1, 0)
ALL_LEVELS = (*STARTER_LEVELS, *LEVELS)


@dataclass(frozen=True)
class Problem:
    """One drawn question: its scene, question, gold answer and, if multiple choice, options.

    ``caption`` states exactly what is drawn and ``rationale`` a correct step-by-step
    solution: the targets of ``observe-r1 align`` (projector captions, format SFT).
    """

    family: str
    level: int
    question: str
    answer: str
    scene: list[dict]
    choices: list[str] | None = None
    caption: str = ""
    rationale: str = ""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _text(text: str, x: float, y: float, size: float = 11) -> dict:
    return {"kind": "text", "text": text, "xy": [x, y], "size": size}


# counting ---------------------------------------------------------------------------


def _object(shape: str, colour: str, cx: float, cy: float, r: float) -> dict:
    box = [cx - r, cy - r, cx + r, cy + r]
    if shape == "circle":
        return {"kind": "ellipse", "box": box, "fill": colour, "shape": shape}
    if shape == "square":
        return {"kind": "rectangle", "box": box, "fill": colour, "shape": shape}
    points = [[cx, cy - r], [cx + r, cy + r], [cx - r, cy + r]]
    return {"kind": "polygon", "points": points, "fill": colour, "shape": shape}


def _counting_problem(level, shape, colour, kinds, scene) -> Problem:
    count = kinds.count((shape, colour))
    question = f"How many {colour} {shape}s are in the image?"
    tally = {kind: kinds.count(kind) for kind in dict.fromkeys(kinds)}
    caption = ", ".join(_plural(n, f"{c} {s}") for (s, c), n in tally.items()) + "."
    steps = ", ".join(map(str, range(1, count + 1)))
    rationale = f"Counting only the {colour} {shape}s: {steps}. The answer is {count}."
    return Problem("counting", level, question, str(count), scene, None, caption, rationale)


def _starter_counting(rng: random.Random, level: int) -> Problem:
    """Few objects of one colour-shape alone (no distractors, no overlaps, none off the frame):
    1-2 drawn large (radius 14) on a 3 x 3 grid of 37-unit cells (-1); 1-3 of radius 9 on a
    4 x 4 grid of 28-unit cells (0), between level -1 and level 1's radius 6 on 6 x 6."""
    shape, colour = rng.choice(SHAPES), rng.choice(OBJECT_COLORS)
    if level == -1:
        count, side, first, cell_size, radius = rng.randint(1, 2), 3, 19, 37, 14
    else:
        count, side, first, cell_size, radius = rng.randint(1, 3), 4, 14, 28, 9
    kinds = [(shape, colour)] * count
    cells = rng.sample(range(side * side), len(kinds))
    scene = []
    for (s, c), cell in zip(kinds, cells, strict=True):
        row, column = divmod(cell, side)
        cx = first + cell_size * column + rng.uniform(-2, 2)
        cy = first + cell_size * row + rng.uniform(-2, 2)
        scene.append(_object(s, c, cx, cy, radius))
    return _counting_problem(level, shape, colour, kinds, scene)


def counting(rng: random.Random, level: int) -> Problem:
    if level <= 0:
        return _starter_counting(rng, level)
    shape, colour = rng.choice(SHAPES), rng.choice(OBJECT_COLORS)
    others = [(s, c) for s in SHAPES for c in OBJECT_COLORS if (s, c) != (shape, colour)]
    if level == 1:
        others = [(s, c) for s, c in others if s != shape and c != colour]
    elif level == 2:
        others = [(s, c) for s, c in others if c != colour]
    count = rng.randint(level, 2 * level + 2)
    distractors = [rng.choice(others) for _ in range(rng.randint(level, 2 * level + 1))]
    kinds = [(shape, colour)] * count + distractors
    cells = rng.sample(range(36), len(kinds))  # a 6 x 6 grid of 18-unit cells: no overlaps
    scene = []
    for (s, c), cell in zip(kinds, cells, strict=True):
        row, column = divmod(cell, 6)
        cx, cy = 11 + 18 * column + rng.uniform(-2, 2), 11 + 18 * row + rng.uniform(-2, 2)
        scene.append(_object(s, c, cx, cy, 6))
    return _counting_problem(level, shape, colour, kinds, scene)


# arithmetic -------------------------------------------------------------------------


def _expression(rng: random.Random, level: int) -> tuple[str, int, str]:
    """(expression, value, worked steps)."""
    if level == -1:
        a = rng.randint(1, 4)
        b = rng.randint(1, 5 - a)
        return f"{a} + {b}", a + b, f"{a} + {b} = {a + b}"
    if level == 0:
        a = rng.randint(1, 8)
        b = rng.randint(1, 9 - a)
        return f"{a} + {b}", a + b, f"{a} + {b} = {a + b}"
    if level == 1:
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        return f"{a} + {b}", a + b, f"{a} + {b} = {a + b}"
    if level == 2:
        a = rng.randint(10, 60)
        b = rng.randint(1, a)
        if rng.random() < 0.5:
            return f"{a} - {b}", a - b, f"{a} - {b} = {a - b}"
        return f"{a} + {b}", a + b, f"{a} + {b} = {a + b}"
    if level == 3:
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        return f"{a} * {b}", a * b, f"{a} * {b} = {a * b}"
    a, b, c = rng.randint(1, 20), rng.randint(2, 9), rng.randint(2, 9)
    if level == 4:
        steps = f"First {b} * {c} = {b * c}, then {a} + {b * c} = {a + b * c}"
        return f"{a} + {b} * {c}", a + b * c, steps
    d = rng.randint(1, 20)
    value = (a + b) * c - d
    steps = (
        f"First {a} + {b} = {a + b}, then {a + b} * {c} = {(a + b) * c}, then minus {d} is {value}"
    )
    return f"({a} + {b}) * {c} - {d}", value, steps


ARITHMETIC_FONT = {-1: 40, 0: 28}  # design units; levels 1-5: 18 (shrunk to fit if needed)


def arithmetic(rng: random.Random, level: int) -> Problem:
    text, value, steps = _expression(rng, level)
    drawn = text if level == -1 else f"{text} = ?"  # "a + b = ?" at 40 units would not fit
    scene = [_text(drawn, 56, 56, ARITHMETIC_FONT.get(level, 18))]
    question = "What is the value of the expression in the image?"
    caption = f"The expression {drawn} is written in black."
    rationale = f"{steps}. The answer is {value}."
    return Problem("arithmetic", level, question, str(value), scene, None, caption, rationale)


# dice -------------------------------------------------------------------------------

_PIPS = {
    1: [(0, 0)],
    2: [(-1, -1), (1, 1)],
    3: [(-1, -1), (0, 0), (1, 1)],
    4: [(-1, -1), (1, -1), (-1, 1), (1, 1)],
    5: [(-1, -1), (1, -1), (0, 0), (-1, 1), (1, 1)],
    6: [(-1, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (1, 1)],
}


def _die(value: int, cx: float, cy: float, scale: float = 1.0) -> list[dict]:
    half, step, r = 13 * scale, 7 * scale, 2.5 * scale
    face = {"kind": "rectangle", "box": [cx - half, cy - half, cx + half, cy + half]}
    items = [{**face, "fill": "white", "outline": "black", "width": 2}]
    for dx, dy in _PIPS[value]:
        x, y = cx + dx * step, cy + dy * step
        items.append(
            {"kind": "ellipse", "box": [x - r, y - r, x + r, y + r], "fill": "black", "pip": True}
        )
    return items


def _rows_of_three(n: int, spacing: float = 34) -> list[tuple[float, float]]:
    """Centres of `n` items in rows of up to three, the block centred in the frame."""
    columns = min(n, 3)
    rows = math.ceil(n / columns)
    centres = []
    for index in range(n):
        row, column = divmod(index, columns)
        in_row = min(columns, n - row * columns)
        cx = 56 + (column - (in_row - 1) / 2) * spacing
        cy = 56 + (row - (rows - 1) / 2) * spacing
        centres.append((cx, cy))
    return centres


STARTER_COUNTS = {-1: (2, 3), 0: (2, 4)}  # fewest, most dice (bars, triangles) to count


def _starter_dice(rng: random.Random, level: int) -> Problem:
    """How many dice: 2-3 (-1) or 2-4 (0) dice of the levels' size, 1-6 pips each, laid out
    as levels 1-5 lay them out (the caption the default model learned, "N dice showing ...",
    states the answer; one die is left out: that caption never occurs in levels 1-5)."""
    values = [rng.randint(1, 6) for _ in range(rng.randint(*STARTER_COUNTS[level]))]
    scene = []
    for value, (cx, cy) in zip(values, _rows_of_three(len(values)), strict=True):
        scene += _die(value, cx, cy)
    question = "How many dice are in the image?"
    caption = f"{len(values)} dice showing " + ", ".join(map(str, values)) + "."
    steps = ", ".join(map(str, range(1, len(values) + 1)))
    rationale = f"Counting the dice: {steps}. The answer is {len(values)}."
    return Problem("dice", level, question, str(len(values)), scene, None, caption, rationale)


def dice(rng: random.Random, level: int) -> Problem:
    if level <= 0:
        return _starter_dice(rng, level)
    values = [rng.randint(1, 6) for _ in range(level + 1)]
    scene = []
    for value, (cx, cy) in zip(values, _rows_of_three(len(values)), strict=True):
        scene += _die(value, cx, cy)
    question = "What is the total number of dots on the dice?"
    caption = f"{len(values)} dice showing " + ", ".join(map(str, values)) + "."  # 2+ dice
    total = sum(values)
    rationale = " + ".join(map(str, values)) + f" = {total}. The answer is {total}."
    return Problem("dice", level, question, str(total), scene, None, caption, rationale)


# chart ------------------------------------------------------------------------------


def _chart_question(rng: random.Random, level: int, values: list[int]) -> tuple[str, int, str]:
    """(question, answer, worked steps)."""
    days = range(1, len(values) + 1)
    if level == 1:
        day = rng.choice(days)
        return (
            f"What is the value for day {day}?",
            values[day - 1],
            f"Day {day} shows {values[day - 1]}",
        )
    if level == 2:
        best = values.index(max(values)) + 1
        return (
            "On which day is the value highest?",
            best,
            f"The highest value {max(values)} is on day {best}",
        )
    if level == 3:
        high, low = sorted(rng.sample(days, 2), key=lambda d: -values[d - 1])
        question = f"How much larger is the value for day {high} than for day {low}?"
        answer = values[high - 1] - values[low - 1]
        return question, answer, f"{values[high - 1]} - {values[low - 1]} = {answer}"
    if level == 4:
        high, low = max(values), min(values)
        steps = f"The highest is {high}, the lowest {low}: {high} - {low} = {high - low}"
        spread = high - low
        return "What is the highest value minus the lowest value?", spread, steps
    steps = " + ".join(map(str, values)) + f" = {sum(values)}"
    return "What is the sum of all the values?", sum(values), steps


def _marks(points: list[list[float]], bars: bool, width: float, bottom: float) -> list[dict]:
    """Bars from the axis up to each point, or a line through the points with dots."""
    if bars:
        return [
            {"kind": "rectangle", "box": [x - width / 2, y, x + width / 2, bottom], "fill": "blue"}
            for x, y in points
        ]
    line = {"kind": "line", "points": points, "color": "blue", "width": 2}
    dots = [
        {"kind": "ellipse", "box": [x - 2.5, y - 2.5, x + 2.5, y + 2.5], "fill": "blue"}
        for x, y in points
    ]
    return [line, *dots]


CHART_FRAME = (14, 106, 92, 7.5)  # left, right, bottom, unit: value v sits at bottom - v * unit


def _chart_scene(values: list[int], bars: bool) -> list[dict]:
    """Axes, the marks (bars or a line), value labels above them and day numbers below."""
    left, right, bottom, unit = CHART_FRAME
    slot = (right - left) / len(values)
    points = [[left + slot * (i + 0.5), bottom - v * unit] for i, v in enumerate(values)]
    axes = [[left, 10], [left, bottom], [right, bottom]]
    scene = [{"kind": "line", "points": axes, "color": "black"}]
    scene += _marks(points, bars, slot * 0.6, bottom)
    for day, ((x, y), value) in enumerate(zip(points, values, strict=True), start=1):
        scene += [_text(str(value), x, y - 7, 10), _text(str(day), x, bottom + 8, 10)]
    scene.append(_text("day", left - 6, bottom + 8, 8))
    return scene


def _chart_caption(values: list[int], bars: bool) -> str:
    listing = ", ".join(f"day {day}: {value}" for day, value in enumerate(values, start=1))
    return f"A {'bar' if bars else 'line'} chart of {len(values)} days with {listing}."


def _starter_chart(rng: random.Random, level: int) -> Problem:
    """How many bars: 2-3 (-1) or 2-4 (0), drawn as a level-1 bar chart (the caption the
    default model learned, "A bar chart of N days ...", states the answer)."""
    values = rng.sample(range(1, 10), rng.randint(*STARTER_COUNTS[level]))
    scene = _chart_scene(values, bars=True)
    question = "How many bars are in the chart?"
    steps = ", ".join(map(str, range(1, len(values) + 1)))
    rationale = f"Counting the bars: {steps}. The answer is {len(values)}."
    caption = _chart_caption(values, bars=True)
    return Problem("chart", level, question, str(len(values)), scene, None, caption, rationale)


def chart(rng: random.Random, level: int) -> Problem:
    if level <= 0:
        return _starter_chart(rng, level)
    values = rng.sample(range(1, 10), level + 2)  # distinct: every question has one answer
    bars = rng.random() < 0.5
    scene = _chart_scene(values, bars)
    question, answer, steps = _chart_question(rng, level, values)
    caption = _chart_caption(values, bars)
    rationale = f"{steps}. The answer is {answer}."
    return Problem("chart", level, question, str(answer), scene, None, caption, rationale)


# geometry ---------------------------------------------------------------------------


def _fit(points: list[tuple[float, float]], box=(18, 14, 94, 86)) -> list[list[float]]:
    """`points` (y up) scaled and centred into `box` (design units, y down), aspect kept."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, y0, x1, y1 = box
    scale = min((x1 - x0) / (max(xs) - min(xs)), (y1 - y0) / (max(ys) - min(ys)))
    dx = x0 + ((x1 - x0) - scale * (max(xs) - min(xs))) / 2
    dy = y0 + ((y1 - y0) - scale * (max(ys) - min(ys))) / 2
    return [[dx + (x - min(xs)) * scale, dy + (max(ys) - y) * scale] for x, y in points]


def _rectangle(rng: random.Random, level: int) -> Problem:
    width, height = rng.randint(2, 20), rng.randint(2, 20)
    drawn_height = min(max(height, width / 3), width * 3)  # aspect kept within 1:3 .. 3:1
    (x0, y1), (x1, y0) = _fit([(0, 0), (width, drawn_height)], (24, 18, 94, 84))
    scene = [
        {"kind": "rectangle", "box": [x0, y0, x1, y1], "outline": "black", "width": 2},
        _text(str(width), (x0 + x1) / 2, y1 + 8),
        _text(str(height), x0 - 9, (y0 + y1) / 2),
    ]
    if level == 1:
        question, answer = "What is the perimeter of the rectangle?", 2 * (width + height)
        steps = f"2 * ({width} + {height}) = {answer}"
    else:
        question, answer = "What is the area of the rectangle?", width * height
        steps = f"{width} * {height} = {answer}"
    caption = f"A rectangle with sides labelled {width} and {height}."
    rationale = f"{steps}. The answer is {answer}."
    return Problem("geometry", level, question, str(answer), scene, None, caption, rationale)


def _triangle_angles(rng: random.Random, level: int) -> Problem:
    a = rng.randint(30, 100)
    b = rng.randint(30, 150 - a)
    ra, rb = math.radians(a), math.radians(b)
    side = math.sin(rb) / math.sin(ra + rb)  # base 1, law of sines: the side from A to C
    apex = (side * math.cos(ra), side * math.sin(ra))
    A, B, C = _fit([(0, 0), (1, 0), apex])
    scene = [  # labels outside the corners: below the base ends, above the apex
        {"kind": "polygon", "points": [A, B, C], "outline": "black", "width": 2},
        _text(f"{a}°", A[0] - 6, A[1] + 7, 10),
        _text(f"{b}°", B[0] + 6, B[1] + 7, 10),
        _text("?", C[0], C[1] - 7, 10),
    ]
    question = "Two angles of the triangle are given. What is the angle marked ?, in degrees?"
    answer = 180 - a - b
    caption = f"A triangle with angles labelled {a}°, {b}° and ?."
    rationale = f"The angles add up to 180: 180 - {a} - {b} = {answer}. The answer is {answer}."
    return Problem("geometry", level, question, str(answer), scene, None, caption, rationale)


_TRIPLES = ((3, 4, 5), (5, 12, 13), (8, 15, 17), (7, 24, 25), (20, 21, 29))


def _right_triangle(rng: random.Random, level: int) -> Problem:
    if level == 4:
        a, b = rng.randint(2, 16), rng.randint(1, 8) * 2
        question, answer = "What is the area of the right triangle?", a * b // 2
        steps = f"Half the product of the legs: {a} * {b} / 2 = {answer}"
    else:
        a, b, c = rng.choice(_TRIPLES)
        k = rng.randint(1, max(1, 30 // c))
        a, b = (a * k, b * k) if rng.random() < 0.5 else (b * k, a * k)
        question, answer = "How long is the hypotenuse of the right triangle?", c * k
        steps = f"sqrt({a}^2 + {b}^2) = sqrt({a * a + b * b}) = {answer}"
    corner, right, top = _fit([(0, 0), (a, 0), (0, b)])
    (x, y), mark = corner, 5
    scene = [
        {"kind": "polygon", "points": [corner, right, top], "outline": "black", "width": 2},
        {"kind": "line", "points": [[x + mark, y], [x + mark, y - mark], [x, y - mark]]},
        _text(str(a), (x + right[0]) / 2, y + 8),
        _text(str(b), x - 9, (y + top[1]) / 2),
    ]
    caption = f"A right triangle with legs labelled {a} and {b}."
    rationale = f"{steps}. The answer is {answer}."
    return Problem("geometry", level, question, str(answer), scene, None, caption, rationale)


def _starter_triangles(rng: random.Random, level: int) -> Problem:
    """How many triangles: 2-3 (-1) or 2-4 (0) black outline triangles (28 units wide, drawn
    as levels 1-5 draw their figures), in rows of up to three."""
    count = rng.randint(*STARTER_COUNTS[level])
    scene = []
    for cx, cy in _rows_of_three(count):
        cx, cy = cx + rng.uniform(-2, 2), cy + rng.uniform(-2, 2)
        corners = [[cx - 14, cy + 12], [cx + 14, cy + 12], [cx, cy - 12]]
        scene.append(
            {
                "kind": "polygon",
                "points": corners,
                "outline": "black",
                "width": 2,
                "shape": "triangle",
            }
        )
    question = "How many triangles are in the image?"
    caption = f"{count} triangles."
    steps = ", ".join(map(str, range(1, count + 1)))
    rationale = f"Counting the triangles: {steps}. The answer is {count}."
    return Problem("geometry", level, question, str(count), scene, None, caption, rationale)


def geometry(rng: random.Random, level: int) -> Problem:
    if level <= 0:
        return _starter_triangles(rng, level)
    if level <= 2:
        return _rectangle(rng, level)
    if level == 3:
        return _triangle_angles(rng, level)
    return _right_triangle(rng, level)


FAMILIES: dict[str, Callable[[random.Random, int], Problem]] = {
    "counting": counting,
    "arithmetic": arithmetic,
    "dice": dice,
    "chart": chart,
    "geometry": geometry,
}


def as_choice(problem: Problem, rng: random.Random, letter: int | None = None) -> Problem:
    """The multiple-choice variant: the gold value and three nearby wrong values as options
    A-D (starter levels: one, options A-B), the gold letter as answer (the question stays
    bare, see `observe_r1.data.rows`); the gold at a shuffled place, or at option `letter` (0: A).
    A negative gold (arithmetic level 5) gets negative wrong values too."""
    gold = int(problem.answer)
    spread = max(3, abs(gold) // 4)
    span = range(gold - spread, gold + spread + 1)
    wrong = [v for v in span if v != gold and (v >= 0 or gold < 0)]
    n_wrong = 1 if problem.level in STARTER_LEVELS else 3
    choices = [str(v) for v in rng.sample(wrong, n_wrong)]
    if letter is None:
        choices.append(str(gold))
        rng.shuffle(choices)
    else:
        choices.insert(letter, str(gold))
    letter_name = "ABCD"[choices.index(str(gold))]
    rationale = f"{problem.rationale} The value {gold} is option {letter_name}."
    return replace(problem, answer=letter_name, choices=choices, rationale=rationale)
