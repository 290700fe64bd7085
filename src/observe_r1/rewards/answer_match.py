"""Does a final answer match the gold answer? Cheap exact rules first, math-verify last.

The first rule that applies decides:

1. Multiple choice: a gold letter A-F (``C``, ``(C)``) matches an answer that starts with that
   choice: ``C``, ``(C)``, ``C.``, ``C. 12``, ``(C) 12``, ``Option C``, ``Answer: C``, also
   inside ``$...$`` or ``\\boxed{}``. The letter is upper case; a bare letter followed by more
   text (``A or C``) is no choice. Only the leading choice counts, so listing several options
   never earns more than committing to the first.
2. Prose gold (words only: ``Paris``, ``yes``): normalised text equality. As LaTeX, SymPy would read
   ``Paris`` as the product P*a*r*i*s and accept any anagram.
3. The same text up to whitespace: equal.
4. Plain numbers on both sides (``12``, ``-0.5``, ``3/4``, ``\\frac{3}{4}``), both percentages
   or neither (``25%``, ``25\\%``): equal exact values are equal; values further apart than
   math-verify's rounding (6 decimals, of the fraction for percentages) are different. Values
   closer than that are left to math-verify (``1/3`` equals ``0.333333`` there).
5. math-verify, in the time-limited worker (`observe_r1.rewards.safe_verify`). Percentages, sets,
   intervals, equations and units are as the library handles them (``50%`` equals ``0.5`` and
   also ``50``).
   A gold it cannot read as math falls back to normalised text equality (the public code scored
   1.0 for every response in that case). A timeout counts as different.

Rules 1-4 run in microseconds and cover most answers, so the worker only sees real LaTeX.
All of them run in time linear in the text (no backtracking regex), and texts longer than
`MAX_MATCH_CHARS` are only compared as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

from observe_r1.rewards.safe_verify import VerifyTimeout, math_equal

MATH_VERIFY_ROUNDING = Fraction(1, 10**6)

MAX_MATCH_CHARS = 1000  # longer gold or answer texts: whitespace-normalised equality only
_COMMANDS = ("\\boxed{", "\\text{", "\\textbf{", "\\mathrm{")
# Every pattern below runs in time linear in the text: no two adjacent quantifiers can both
# take the same character, so a failed match never retries more than one split per position.
_CHOICE = re.compile(r"(?i:(?:option|answer)\s*(?::\s*)?)?(?:\(([A-F])\)|([A-F])(?:[.:)]|$))")
_LATEX_FRACTION = re.compile(r"\\[dt]?frac\{(\d+)\}\{(\d+)\}")
_NUMBER = re.compile(r"([+-]?(?:\d+(?:\.\d+)?|\.\d+|\d+/(?=\d*[1-9])\d+))(\\?%)?")  # a/b: b != 0
_PROSE = re.compile(r"[A-Za-z]{2,}(?:[\s'-]+[A-Za-z]+)*")


def _unwrap_once(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The bounds of ``text[start:end]`` without one layer of ``$...$`` (every ``$`` of the
    leading and the trailing run), or of ``\\boxed{...}``, ``\\text{...}``, ``\\textbf{...}``,
    ``\\mathrm{...}`` up to the final ``}``; None if the slice is not wrapped so."""
    if end - start >= 2 and text[start] == "$" and text[end - 1] == "$":
        inner_start, inner_end = start, end
        while inner_start < end and text[inner_start] == "$":
            inner_start += 1
        if inner_start == end:  # nothing but dollars: the content is empty
            return start, start
        while text[inner_end - 1] == "$":
            inner_end -= 1
        return inner_start, inner_end
    if text.endswith("}", start, end):
        for command in _COMMANDS:
            if end - start > len(command) and text.startswith(command, start):
                return start + len(command), end - 1
    return None


def unwrap(text: str) -> str:
    """`text` stripped of surrounding whitespace, ``$...$``, ``\\boxed{}`` and ``\\text{}``.

    Parsed by hand in time linear in the text: each layer moves the bounds inwards (the regex
    this replaces, ``\\$+(.*?)\\$+``, took cubic time on a run of dollars)."""
    start, end = 0, len(text)
    while True:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        inner = _unwrap_once(text, start, end)
        if inner is None:
            return text[start:end]
        start, end = inner


def choice_letter(text: str) -> str | None:
    """The multiple-choice letter A-F that `text` opens with (rule 1), or None."""
    match = _CHOICE.match(unwrap(text))
    return match and (match[1] or match[2])


class Number(NamedTuple):
    """An exact value; `percent` if it was written with a % sign."""

    value: Fraction
    percent: bool


def plain_number(text: str) -> Number | None:
    """An integer, decimal, a/b or ``\\frac{a}{b}``, maybe with ``%``; None for anything else."""
    match = _NUMBER.fullmatch(_LATEX_FRACTION.sub(r"\1/\2", unwrap(text)))
    return Number(Fraction(match[1]), match[2] is not None) if match else None


def numbers_verdict(gold: Number | None, answer: Number | None) -> bool | None:
    """Rule 4: math-verify's verdict where it is certain for two plain numbers, else None.

    Equal values are equal; values further apart than math-verify's rounding (6 decimals, of the
    fraction for percentages) are different. A percentage against a plain number is left open:
    math-verify accepts ``50%`` for both ``0.5`` and ``50``.
    """
    if gold is None or answer is None or gold.percent != answer.percent:
        return None
    if gold.value == answer.value:
        return True
    tolerance = MATH_VERIFY_ROUNDING * (100 if gold.percent else 1)
    return False if abs(gold.value - answer.value) > tolerance else None


def is_prose(text: str) -> bool:
    """Whether `text` is words only (rule 2): ``Paris``, ``yes``, ``New York``."""
    return _PROSE.fullmatch(unwrap(text)) is not None


def normalise_text(text: str) -> str:
    """Case-folded, whitespace-collapsed, unwrapped text without a final full stop."""
    return " ".join(unwrap(text).rstrip(".").casefold().split())


def _squash(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class _Gold:
    """Everything the cheap rules need to know about one gold answer."""

    text: str
    normalised: str
    letter: str | None
    number: Number | None
    is_prose: bool


@lru_cache(maxsize=1 << 16)
def _read_gold(gold: str) -> _Gold:
    return _Gold(
        text=_squash(gold),
        normalised=normalise_text(gold),
        letter=choice_letter(gold),
        number=plain_number(gold),
        is_prose=is_prose(gold),
    )


def answers_match(gold: str, answer: str, timeout_s: float) -> bool:
    """Whether `answer` matches `gold` by the rules above; math-verify gets `timeout_s` seconds.

    A gold or answer longer than `MAX_MATCH_CHARS` is only compared as text (rule 3), so that
    no rule ever parses an unbounded string (rows and rewards refuse such texts earlier)."""
    if len(gold) > MAX_MATCH_CHARS or len(answer) > MAX_MATCH_CHARS:
        return _squash(answer) == _squash(gold)
    reference = _read_gold(gold)
    if reference.letter:
        return choice_letter(answer) == reference.letter
    if reference.is_prose:
        return normalise_text(answer) == reference.normalised
    if _squash(answer) == reference.text:
        return True
    verdict = numbers_verdict(reference.number, plain_number(answer))
    if verdict is not None:
        return verdict
    try:
        verdict = math_equal(gold, answer, timeout_s)
    except VerifyTimeout:
        return False
    return normalise_text(answer) == reference.normalised if verdict is None else verdict
