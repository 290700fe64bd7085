"""The answer prior of a rows file: what answering one constant per question type earns.

A row's *stratum* is its family, level and format (open, or with options: an answerer that
never looks at the image still sees whether options are offered); rows without a family or
level share one. The *prior accuracy* is the accuracy of the best constant answer of each
stratum, judged as `observe-r1 eval` judges accuracy (`judged`); the *chance accuracy* is
1 / (the number of distinct gold answers in the stratum). Both are row-weighted means over
strata, overall and per level and family. On natural synthetic rows the prior is well
above chance (small counts are common); on answer-balanced rows it is at chance up to
rounding (``ceil(rows / answers) / rows`` per stratum).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Any

from observe_r1.evaluation.evaluate import question_and_gold
from observe_r1.rewards import accuracy_reward


def judged(gold: str, prediction: str | None) -> bool:
    """Whether an extracted answer `prediction` earns accuracy against `gold`: the judge of
    `observe_r1.evaluation.evaluate.prediction_records` (`accuracy_reward` on its answer block)."""
    return prediction is not None and accuracy_reward(f"<answer>{prediction}</answer>", gold) == 1


def stratum(row: dict[str, Any]) -> tuple[str, str, str]:
    """(family, level, ``"choice"`` or ``"open"``) of a row, ``"all"`` where a field is absent."""
    family, level = row.get("family"), row.get("level")
    return (
        "all" if family is None else str(family),
        "all" if level is None else str(level),
        "choice" if row.get("choices") else "open",
    )


def best_constant(golds: list[str]) -> tuple[str, list[bool]]:
    """The constant answer among `golds` that matches most of them (ties: the smallest
    string) and which golds it matches: (answer, hits (len(golds),)). Judges each pair of
    distinct golds once."""
    counts = Counter(golds)
    scores = {c: sum(n for gold, n in counts.items() if judged(gold, c)) for c in counts}
    answer = min(counts, key=lambda c: (-scores[c], c))
    matched = {gold: judged(gold, answer) for gold in counts}
    return answer, [matched[gold] for gold in golds]


def prior_accuracy(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``prior_accuracy`` and ``chance_accuracy`` of `rows` (see the module), each also
    ``_by_level`` and ``_by_family``, and ``prior_strata``: per stratum its rows, distinct
    answers, best constant answer and what it scores."""
    by_stratum: dict[tuple, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        by_stratum[stratum(row)].append(index)
    hit, chance = [False] * len(rows), [0.0] * len(rows)
    strata = []
    for (family, level, kind), indices in sorted(by_stratum.items()):
        golds = [question_and_gold(rows[i])[1] for i in indices]
        answer, hits = best_constant(golds)
        for i, row_hit in zip(indices, hits, strict=True):
            hit[i], chance[i] = row_hit, 1 / len(set(golds))
        strata.append(
            {"family": family, "level": level, "format": kind, "rows": len(indices),
             "answers": len(set(golds)), "best_answer": answer,
             "prior_accuracy": sum(hits) / len(hits), "chance_accuracy": 1 / len(set(golds))}
        )  # fmt: skip
    report: dict[str, Any] = {
        "prior_accuracy": statistics.fmean(hit),
        "chance_accuracy": statistics.fmean(chance),
    }
    for group, position in (("level", 1), ("family", 0)):
        members: dict[str, list[int]] = defaultdict(list)
        for index, row in enumerate(rows):
            members[stratum(row)[position]].append(index)
        for name, values in (("prior_accuracy", hit), ("chance_accuracy", chance)):
            report[f"{name}_by_{group}"] = {
                key: statistics.fmean(values[i] for i in indices)
                for key, indices in sorted(members.items())
            }
    return report | {"prior_strata": strata}


def prior_lines(report: dict[str, Any]) -> list[str]:
    """A markdown table of a `prior_accuracy` report: overall, then one line per stratum."""
    lines = [
        f"prior accuracy {report['prior_accuracy']:.3f} (best constant answer per family x "
        f"level x format), chance {report['chance_accuracy']:.3f}",
        "",
        "| family | level | format | rows | answers | best answer | prior | chance |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {s['family']} | {s['level']} | {s['format']} | {s['rows']} | {s['answers']} | "
        f"{s['best_answer']} | {s['prior_accuracy']:.3f} | {s['chance_accuracy']:.3f} |"
        for s in report["prior_strata"]
    ]
    return lines
