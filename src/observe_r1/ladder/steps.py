"""The model-free steps of the NeuraLadder builder: rules over rows and rollout statistics.

Every function takes plain row dicts (and a seeded `random.Random` where it draws), so each
rule is testable without a model. A scored row carries, besides its input fields:

- ``difficulty`` = 1 - n_correct / n_rollouts, in {0, 1/N, ..., 1};
- ``difficulty_level`` = n_rollouts - n_correct, the integer level 0..N (the input's own
  ``level``, e.g. the synth's intrinsic 1-5, is left untouched);
- ``complexity`` = ``mean_tokens``, the mean length in tokens of the N responses;
- ``n_correct``, ``n_rollouts``, ``greedy_correct`` (false: rows the greedy answer got right
  are dropped; null when the greedy filter is off).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from observe_r1.data.rows import LETTERS
from observe_r1.rewards import accuracy_reward
from observe_r1.rewards.answer_match import is_prose, plain_number, unwrap
from observe_r1.rewards.safe_verify import VerifyTimeout, math_equal

Row = dict[str, Any]
MAX_EXPRESSION_CHARS = 64
MAX_WORDS = 2


def _lists_option(question: str, letter: str) -> bool:
    """Whether the question text offers option `letter`: ``B.``, ``B)``, ``(B)``, ``B:``."""
    return re.search(rf"(?:^|\s)\(?{letter}[).:]", question) is not None


def verifiable(row: Row, *, allow_words: bool = False, timeout_s: float = 2.0) -> bool:
    """Whether the row's answer can be checked automatically (the paper's step 1).

    Kept: a choice letter when the row has ``choices`` or its question lists that option; a
    plain number or fraction; a short expression math-verify reads (``2\\sqrt{3}``, ``\\pi/4``).
    Words (``yes``, ``red``, up to `MAX_WORDS`) only with `allow_words`: the paper keeps
    numbers, fractions and choice letters, and a word answer invites synonyms.
    """
    answer = unwrap(row["answer"])
    if row.get("choices"):
        return True  # `read_rows` checked that the answer is a letter or an option
    if len(answer) == 1 and answer in LETTERS:
        return _lists_option(row["question"], answer)
    if plain_number(answer):
        return True
    if is_prose(answer):
        return allow_words and len(answer.split()) <= MAX_WORDS
    if not answer or len(answer) > MAX_EXPRESSION_CHARS:
        return False
    try:
        return math_equal(answer, answer, timeout_s) is True  # None: not mathematics
    except VerifyTimeout:
        return False


def answer_only_correct(text: str, answer: str) -> bool:
    """Whether a greedy answer-only response is right (step 2): the content of its
    ``<answer>`` block if it opened one, else its whole text, judged by `accuracy_reward`."""
    prediction = text.split("<answer>", 1)[1] if "<answer>" in text else text
    prediction = prediction.split("</answer>", 1)[0].strip()
    return accuracy_reward(f"<answer>{prediction}</answer>", answer) >= 1.0


def response_correct(text: str, answer: str) -> bool:
    """Whether a step-by-step response is right (step 3): its single ``<answer>`` block
    matches the gold (`accuracy_reward`; the tag layout is not required)."""
    return accuracy_reward(text, answer) >= 1.0


def scored(row: Row, correct: list[bool], tokens: list[int], greedy_correct: bool | None) -> Row:
    """`row` with its difficulty and complexity from N sampled responses (step 3)."""
    n_correct, n = sum(correct), len(correct)
    mean_tokens = sum(tokens) / n
    return {
        **row,
        "difficulty": 1 - n_correct / n,
        "difficulty_level": n - n_correct,
        "complexity": mean_tokens,
        "n_correct": n_correct,
        "n_rollouts": n,
        "mean_tokens": mean_tokens,
        "greedy_correct": greedy_correct,
    }


def sort_rows(rows: list[Row]) -> list[Row]:
    """Easy to hard: difficulty ascending, then complexity ascending (step 4; stable)."""
    return sorted(rows, key=lambda row: (row["difficulty"], row["complexity"]))


def drop_easy(
    rows: list[Row], *, quantile: float = 0.25, min_tokens: float | None = None
) -> tuple[list[Row], int, float | None]:
    """Drop difficulty-0 rows of low complexity (step 5): below `min_tokens` if given, else
    below the `quantile` of the difficulty-0 rows' complexities. Returns the kept rows, the
    number dropped and the threshold (None when no row has difficulty 0)."""
    easy = [row["complexity"] for row in rows if row["difficulty"] == 0]
    if not easy:
        return rows, 0, None
    threshold = float(np.quantile(easy, quantile)) if min_tokens is None else float(min_tokens)
    kept = [row for row in rows if row["difficulty"] > 0 or row["complexity"] >= threshold]
    return kept, len(rows) - len(kept), threshold


def flag_unsolved(rows: list[Row]) -> list[Row]:
    """Mark rows no response solved (difficulty 1) with ``needs_review: true``, others false:
    they may be too hard, or their gold answer may be wrong (the paper checked them by hand)."""
    return [{**row, "needs_review": row["difficulty"] == 1} for row in rows]


@dataclass
class Bucket:
    """One stage of the ladder: rows drawn for `level` from it and its neighbours."""

    level: int
    rows: list[Row]

    @property
    def own_share(self) -> float:
        own = sum(row["difficulty_level"] == self.level for row in self.rows)
        return own / len(self.rows) if self.rows else 0.0


def _fit_sums(plan: np.ndarray, totals: np.ndarray, axis: int, *, cap: bool = False):
    """`plan` with its sums along `axis` scaled to `totals` (only down, with `cap`)."""
    sums = plan.sum(axis)
    factor = np.divide(totals, sums, out=np.zeros_like(totals), where=sums > 0)
    if cap:
        factor = np.minimum(factor, 1.0)
    return plan * (factor[:, None] if axis == 1 else factor[None, :])


def transport_plan(levels: list[int], spare: list[int], spread: int) -> np.ndarray:
    """``plan[i, j]``: how many of level i's spare rows go to bucket j.

    Level i has ``spare[i]`` rows to give, and its bucket takes as many from its neighbours
    (levels within ``+-spread``, never itself). Sinkhorn scaling of the neighbour matrix gives
    the most even plan that meets both sides; rounded by largest remainders. Rows that no
    neighbour can take (an isolated level, or too few rows around it) stay in their own
    bucket, on the diagonal.
    """
    gaps = np.abs(np.subtract.outer(levels, levels))
    plan = ((gaps > 0) & (gaps <= spread)).astype(float)
    totals = np.asarray(spare, dtype=float)
    for _ in range(500):
        plan = _fit_sums(_fit_sums(plan, totals, axis=1), totals, axis=0)
    plan = _fit_sums(plan, totals, axis=1, cap=True)
    counts = np.floor(plan).astype(int)
    for i, total in enumerate(spare):
        placed = round(plan[i].sum())
        remainders = np.argsort(counts[i] - plan[i], kind="stable")
        counts[i, remainders[: placed - counts[i].sum()]] += 1
        counts[i, i] += total - placed
    return counts


def mix_levels(
    rows: list[Row], rng: random.Random, *, own_share: float = 0.6, spread: int = 2
) -> list[Bucket]:
    """Buckets easy to hard, each mixing its level with levels within ``+-spread`` (step 6).

    Each level keeps `own_share` of its rows (rounded, drawn at random) for its own bucket
    and gives the rest to its neighbours' buckets by `transport_plan`, so that every bucket is
    about as large as its level and about `own_share` of it is its own level. Every row lands
    in exactly one bucket; each bucket is shuffled.
    """
    levels = sorted({row["difficulty_level"] for row in rows})
    members: dict[int, list[int]] = {level: [] for level in levels}
    for index, row in enumerate(rows):
        members[row["difficulty_level"]].append(index)
    chosen: list[list[int]] = []
    spare: list[list[int]] = []
    for level in levels:
        order = rng.sample(members[level], len(members[level]))
        keep = round(own_share * len(order))
        chosen.append(order[:keep])
        spare.append(order[keep:])
    plan = transport_plan(levels, [len(given) for given in spare], spread)
    for source, given in enumerate(spare):
        start = 0
        for target, count in enumerate(plan[source]):
            chosen[target] += given[start : start + count]
            start += count
    buckets = []
    for level, indices in zip(levels, chosen, strict=True):
        rng.shuffle(indices)
        buckets.append(Bucket(level, [rows[index] for index in indices]))
    return buckets


def sample_in_order(rows: list[Row], size: int | None, rng: random.Random) -> list[Row]:
    """`size` rows drawn uniformly, file order kept (step 7); all rows if `size` is None or
    not smaller."""
    if size is None or size >= len(rows):
        return list(rows)
    return [rows[index] for index in sorted(rng.sample(range(len(rows)), size))]


def level_profile(rows: list[Row], n_rollouts: int) -> list[dict[str, Any]]:
    """Per difficulty level 0..N: rows, share of all rows, mean complexity (None if empty)."""
    profile = []
    for level in range(n_rollouts + 1):
        members = [row["complexity"] for row in rows if row["difficulty_level"] == level]
        profile.append(
            {
                "difficulty_level": level,
                "difficulty": level / n_rollouts,
                "rows": len(members),
                "share": len(members) / len(rows) if rows else 0.0,
                "mean_complexity": float(np.mean(members)) if members else None,
            }
        )
    return profile


def _accuracy_cell(rows: list[Row]) -> dict[str, Any]:
    rollouts = sum(row["n_rollouts"] for row in rows)
    correct = sum(row["n_correct"] for row in rows)
    signal = sum(0 < row["n_correct"] < row["n_rollouts"] for row in rows)
    return {
        "rows": len(rows),
        "rollouts": rollouts,
        "correct": correct,
        "accuracy": correct / rollouts if rollouts else None,
        "rows_with_signal": signal,  # some but not all responses right: a GRPO group that teaches
        "mean_tokens": float(np.mean([row["mean_tokens"] for row in rows])) if rows else None,
    }


def _key(value: Any) -> str:
    return "none" if value is None else str(value)


def sampled_accuracy(rows: list[Row]) -> dict[str, Any]:
    """The scored rows' sampled accuracy (correct / rollouts), for ``open`` and ``choice``
    rows apart (a choice row is right by guessing 1 in #options), each overall (``all``), by
    intrinsic ``level``, by ``family`` and by family then level; a cell also counts its rows,
    the rows with some but not all responses right (``rows_with_signal``) and their mean
    response tokens. Levels and families are keys as text (``none`` when a row has none)."""
    table: dict[str, Any] = {}
    for kind in ("open", "choice"):
        members = [row for row in rows if bool(row.get("choices")) == (kind == "choice")]
        by_level: dict[str, list[Row]] = {}
        by_family: dict[str, list[Row]] = {}
        nested: dict[str, dict[str, list[Row]]] = {}
        order = lambda r: (_key(r.get("family")), _level_order(_key(r.get("level"))))  # noqa: E731
        for row in sorted(members, key=order):
            level, family = _key(row.get("level")), _key(row.get("family"))
            by_level.setdefault(level, []).append(row)
            by_family.setdefault(family, []).append(row)
            nested.setdefault(family, {}).setdefault(level, []).append(row)
        table[kind] = {
            "all": _accuracy_cell(members),
            "by_level": {
                k: _accuracy_cell(v)
                for k, v in sorted(by_level.items(), key=lambda item: _level_order(item[0]))
            },
            "by_family": {k: _accuracy_cell(v) for k, v in by_family.items()},
            "by_family_level": {
                family: {k: _accuracy_cell(v) for k, v in levels.items()}
                for family, levels in nested.items()
            },
        }
    return table


def _level_order(key: str) -> tuple[int, float | str]:
    try:
        return 0, float(key)
    except ValueError:
        return 1, key


def level_spearman(rows: list[Row]) -> float | None:
    """Spearman's rho between the rows' intrinsic ``level`` and measured ``difficulty``;
    None with fewer than 3 such rows or when either side is constant."""
    pairs = [(row["level"], row["difficulty"]) for row in rows if "level" in row]
    if len(pairs) < 3 or len({p[0] for p in pairs}) < 2 or len({p[1] for p in pairs}) < 2:
        return None
    return float(spearmanr(*zip(*pairs, strict=True)).statistic)
