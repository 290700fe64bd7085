"""Procedural visual questions with checkable answers: ``observe-r1 synth``.

`synthesize` writes ``DIR/rows.jsonl`` (canonical rows, see `observe_r1.data.rows`) and the PNGs
under ``DIR/images/``; with ``test_n`` also a held-out ``DIR/test.jsonl`` drawn from an
independent random stream. Row ``i`` depends only on (seed, split, i): the same seed gives
byte-identical files. Families cycle in the given order and the levels (default 1-5; the
starter levels -1 and 0 lie below them, see `observe_r1.data.synth.families`) cycle within each
family, so any ``n`` is balanced over both; a ``choice_share`` of rows becomes multiple choice.

Gold answers: ``answers="natural"`` draws them as the families draw them (small counts and
sums are common); ``"balanced"`` stratifies each family x level's gold answers over its
answer range (`observe_r1.data.synth.answers`), so that no constant answer per family x level
beats chance. Training rows default to natural, the held-out test split to balanced.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from observe_r1.data.rows import InputError, check_writable, write_rows
from observe_r1.data.synth.answers import ANSWER_MODES, balanced_problem
from observe_r1.data.synth.families import (
    ALL_LEVELS,
    FAMILIES,
    LEVELS,
    STARTER_LEVELS,
    Problem,
    as_choice,
)
from observe_r1.data.synth.render import DESIGN, render

__all__ = [
    "ALL_LEVELS",
    "FAMILIES",
    "LEVELS",
    "STARTER_LEVELS",
    "Problem",
    "make_problem",
    "parse_levels",
    "synthesize",
]

LEVEL_NAMES = {"starter": STARTER_LEVELS, "all": ALL_LEVELS}


def parse_levels(text: str | None) -> tuple[int, ...]:
    """Levels from a ``--levels`` value: comma-separated integers, ranges ``a:b`` (both
    ends included) and the names ``starter`` (-1, 0) and ``all`` (-1 to 5); ``None`` or an
    empty text: 1-5. Duplicates keep their first place. Raises `InputError` naming the option
    for anything else, or a level outside -1..5."""
    if not text or not text.strip():
        return tuple(LEVELS)
    levels: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if part in LEVEL_NAMES:
            levels += LEVEL_NAMES[part]
            continue
        try:
            low, _, high = part.partition(":")
            ends = (int(low), int(high) if high else int(low))
        except ValueError:
            raise InputError(
                f"--levels: {part!r} is not a level, a range a:b, 'starter' or 'all'"
            ) from None
        levels += range(ends[0], ends[1] + 1)
        if ends[0] > ends[1]:
            raise InputError(f"--levels: empty range {part!r}")
    unknown = sorted(set(levels) - set(ALL_LEVELS))
    if unknown:
        raise InputError(f"--levels: unknown levels {unknown}; choose from -1 to 5")
    return tuple(dict.fromkeys(levels))


def make_problem(
    seed: int,
    split: str,
    index: int,
    families: Sequence[str],
    choice_share: float,
    levels: Sequence[int] = LEVELS,
    answers: str = "natural",
) -> Problem:
    """Row `index` of a split: its family and level by position, its content by its own RNG
    (``answers="balanced"``: its gold answer by its place among its family x level's rows)."""
    rng = random.Random(f"{seed}:{split}:{index}")
    family = families[index % len(families)]
    level = levels[(index // len(families)) % len(levels)]
    if answers == "balanced":
        place = index // (len(families) * len(levels))
        key = f"{seed}:{split}:{family}:{level}"
        return balanced_problem(family, rng, level, place, choice_share, key)
    problem = FAMILIES[family](rng, level)
    return as_choice(problem, rng) if rng.random() < choice_share else problem


def _write_split(out: Path, split: str, name: str, n: int, answers: str, settings: tuple) -> Path:
    seed, families, choice_share, image_size, levels = settings
    rows = []
    for index in range(n):
        problem = make_problem(seed, split, index, families, choice_share, levels, answers)
        row_id = f"{split}-{problem.family}-{index}"
        image = out / "images" / f"{row_id}.png"
        render(problem.scene, image_size).save(image)
        row = {"id": row_id, "image": str(image), "question": problem.question}
        row |= {"answer": problem.answer, "family": problem.family, "level": problem.level}
        if problem.choices:
            row["choices"] = problem.choices
        row |= {"caption": problem.caption, "rationale": problem.rationale}
        rows.append(row)
    return write_rows(out / name, rows)


def synthesize(
    out: str | Path,
    n: int,
    *,
    seed: int = 0,
    families: Sequence[str] | None = None,
    image_size: int = DESIGN,
    choice_share: float = 0.25,
    test_n: int = 0,
    levels: Sequence[int] | None = None,
    answers: str = "natural",
    test_answers: str = "balanced",
) -> Path:
    """Write `n` rows to ``out/rows.jsonl`` (and `test_n` to ``out/test.jsonl``); return the
    training JSONL. `families` defaults to all of `FAMILIES`, in their order; `levels` to
    1-5 (`STARTER_LEVELS` or any of `ALL_LEVELS`, cycled in the given order); `answers` and
    `test_answers` (``natural`` or ``balanced``) say how each split's gold answers are drawn.

    Raises `observe_r1.data.rows.InputError` (naming the CLI option) for settings out of range
    and outputs that cannot be written, before anything is written."""
    families = list(families or FAMILIES)
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise InputError(f"--families: unknown families {unknown}; choose from {sorted(FAMILIES)}")
    levels = list(LEVELS if levels is None else levels)
    bad_levels = sorted(set(levels) - set(ALL_LEVELS))
    if not levels or bad_levels:
        raise InputError(f"--levels: unknown levels {bad_levels or levels}; choose from -1 to 5")
    if not 56 <= image_size <= 448:
        raise InputError(f"--image-size: must be 56-448 px, got {image_size}")
    if n < 1:
        raise InputError(f"--n: must be at least 1, got {n}")
    if test_n < 0:
        raise InputError(f"--test-n: must be at least 0, got {test_n}")
    if not 0 <= choice_share <= 1:  # NaN too
        raise InputError(f"--choice-share: must lie in [0, 1], got {choice_share}")
    for option, mode in (("--answers", answers), ("--test-answers", test_answers)):
        if mode not in ANSWER_MODES:
            raise InputError(f"{option}: {mode!r} is not natural or balanced")
    out = Path(out)
    check_writable(out, "--out", folder=True)
    check_writable(out / "images", "--out's images", folder=True)
    for name in ("rows.jsonl",) + (("test.jsonl",) if test_n else ()):
        check_writable(out / name, f"--out's {name}")
    (out / "images").mkdir(parents=True, exist_ok=True)
    settings = (seed, families, choice_share, image_size, levels)
    if test_n:
        _write_split(out, "test", "test.jsonl", test_n, test_answers, settings)
    return _write_split(out, "train", "rows.jsonl", n, answers, settings)
