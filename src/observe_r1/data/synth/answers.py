"""Answer-balanced rows: ``observe-r1 synth --answers balanced`` (the test split's default).

A family x level's *answer range* (`answer_range`) is every answer its generator can draw,
exactly (the tests check it against draws). Balanced rows of one family x level take their
gold answers from a stratified sequence over that range (`stratified`): consecutive blocks
of ``len(range)`` rows each hold every answer once, in an order shuffled per block, so any
number of rows holds each answer equally often up to one. A row draws problems from its own
RNG until one has its target answer (`draw_with_answer`): the scene is drawn as the natural
generator draws it, given the answer. Wide ranges are drawn flat (arithmetic level 5 as
often -14 as 60), so balanced levels 1-5 are harder than natural ones.

Multiple choice: the rows asked with options are spread evenly over a family x level's rows
(its row ``j`` is one when ``floor((j + 1) * share)`` exceeds ``floor(j * share)``), and the
open rows, the choice rows' values and the choice rows' gold letters each follow their own
stratified sequence, so both formats are balanced (a prior-only answerer sees the options).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from observe_r1.data.synth.families import (
    _TRIPLES,
    FAMILIES,
    STARTER_COUNTS,
    STARTER_LEVELS,
    Problem,
    as_choice,
)

ANSWER_MODES = ("natural", "balanced")
MAX_DRAWS = 2_000_000  # the rarest answer (dice level 5's 6 or 36) takes ~47,000 on average


def _grid(*ranges: range) -> list[tuple[int, ...]]:
    return [()] if not ranges else [(x, *rest) for x in ranges[0] for rest in _grid(*ranges[1:])]


def _arithmetic(level: int) -> set[int]:
    if level <= 1:
        return set(range(2, {-1: 6, 0: 10, 1: 19}[level]))
    if level == 2:
        return set(range(0, 121))  # a - b (0-59) and a + b (11-120), a 10-60, b 1-a
    if level == 3:
        return {a * b for a, b in _grid(range(2, 13), range(2, 13))}
    small, digits = range(1, 21), range(2, 10)
    if level == 4:
        return {a + b * c for a, b, c in _grid(small, digits, digits)}
    return {(a + b) * c - d for a, b, c, d in _grid(small, digits, digits, small)}


# 1: a value 1-9; 2: the day of the maximum of 4; 3: a difference of 5 distinct values of
# 1-9; 4: max - min of 6 of them; 5: the sum of 7 of them (45 - two others)
CHART = {1: range(1, 10), 2: range(1, 5), 3: range(1, 9), 4: range(5, 9), 5: range(28, 43)}
STARTER_ANSWERS = {"counting": {-1: (1, 2), 0: (1, 3)}, "arithmetic": {-1: (2, 5), 0: (2, 9)}}


def _geometry(level: int) -> set[int]:
    sides = range(2, 21)
    if level == 1:
        return {2 * (w + h) for w, h in _grid(sides, sides)}
    if level == 2:
        return {w * h for w, h in _grid(sides, sides)}
    if level == 3:
        return set(range(30, 121))  # 180 - a - b, a 30-100, b 30-(150 - a)
    if level == 4:
        return {a * k for a, k in _grid(range(2, 17), range(1, 9))}  # a * 2k / 2
    return {c * k for _, _, c in _TRIPLES for k in range(1, max(1, 30 // c) + 1)}


def answer_range(family: str, level: int) -> tuple[str, ...]:
    """Every gold answer family `family` can draw at `level`, as sorted integer strings."""
    if level in STARTER_LEVELS:
        low, high = STARTER_ANSWERS.get(family, STARTER_COUNTS)[level]  # the others: counts
        values = set(range(low, high + 1))
    elif family == "counting":
        values = set(range(level, 2 * level + 3))
    elif family == "dice":
        values = set(range(level + 1, 6 * (level + 1) + 1))
    elif family == "chart":
        values = set(CHART[level])
    else:
        values = {"arithmetic": _arithmetic, "geometry": _geometry}[family](level)
    return tuple(str(value) for value in sorted(values))


def stratified(values: Sequence, key: str, position: int):
    """Item `position` of blocks of `values`, each block a shuffle seeded by (`key`, block):
    any prefix holds every value equally often up to one."""
    block, offset = divmod(position, len(values))
    order = list(values)
    random.Random(f"{key}:{block}").shuffle(order)
    return order[offset]


def draw_with_answer(family: str, rng: random.Random, level: int, answer: str) -> Problem:
    """The first problem `family` draws from `rng` at `level` whose answer is `answer`."""
    for _ in range(MAX_DRAWS):
        problem = FAMILIES[family](rng, level)
        if problem.answer == answer:
            return problem
    raise RuntimeError(f"{family} level {level}: no answer {answer} in {MAX_DRAWS} draws")


def balanced_problem(
    family: str,
    rng: random.Random,
    level: int,
    place: int,
    choice_share: float,
    key: str,
) -> Problem:
    """Row `place` (0, 1, ...) of a family x level's balanced rows; `key` seeds its answer
    sequences (seed, split, family, level), `rng` draws its scene and distractor options."""
    answers = answer_range(family, level)
    choices_before = math.floor(place * choice_share)
    if math.floor((place + 1) * choice_share) == choices_before:  # an open row
        answer = stratified(answers, f"{key}:open", place - choices_before)
        return draw_with_answer(family, rng, level, answer)
    answer = stratified(answers, f"{key}:choice", choices_before)
    options = 2 if level in STARTER_LEVELS else 4
    letter = stratified(range(options), f"{key}:letter", choices_before)
    return as_choice(draw_with_answer(family, rng, level, answer), rng, letter=letter)
