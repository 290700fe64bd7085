"""Does a model's accuracy come from the image? ``observe-r1 eval --image-ablation blank,swap``.

The evaluated rows are asked again with their images replaced (`ablated_rows`):

- ``blank``: each image by a white image of its size;
- ``swap``: a row's images by those of its partner, another row of its stratum (family x
  level x format, `observe_r1.evaluation.prior.stratum`). `swap_partners` sorts a stratum's rows by
  gold answer (answers and rows within an answer in an order seeded by ``seed``) and pairs
  each with the row ``s`` places on, cyclically, ``s`` the size of the largest answer
  group: a derangement in which every partner has another gold answer wherever no answer
  holds more than half of the stratum. Rows whose partner has the same answer anyway (a
  dominant answer; a stratum of one row keeps its own image) are counted and reported.

Text-only rows stay as they are. `image_reliance` reports accuracy with the real, blank and
swapped images; the *image-grounded accuracy* real - swapped (the headline: what the
image's content adds, with the same kind of image in view) and real - blank, each with a
paired bootstrap 95 % interval (`model_zoo.significance.paired_bootstrap`); and a
permutation null (`permutation_null`): the model's real-image answers permuted within each
stratum and judged as accuracy is, i.e. what its answer distribution alone earns.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from model_zoo.significance import paired_bootstrap
from observe_r1.data.rows import InputError, row_images
from observe_r1.evaluation.evaluate import question_and_gold
from observe_r1.evaluation.prior import judged, prior_accuracy, stratum

CONDITIONS = ("blank", "swap")
BLANK_FOLDER = "blank_images"  # in eval's --out: the white images, one per image size
PERMUTATIONS = 2000


def parse_conditions(text: str | None) -> tuple[str, ...]:
    """``--image-ablation`` as a tuple of `CONDITIONS` (in their order); None or '': ()."""
    given = [part.strip() for part in (text or "").split(",") if part.strip()]
    for part in given:
        if part not in CONDITIONS:
            raise InputError(f"--image-ablation: {part!r} is not blank or swap")
    return tuple(c for c in CONDITIONS if c in given)


def _strata(rows: list[dict[str, Any]]) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        groups[stratum(row)].append(index)
    return groups


def swap_partners(rows: list[dict[str, Any]], seed: int) -> list[int]:
    """Partner index of each row (see the module); a function of the rows and `seed`."""
    partners = list(range(len(rows)))
    for key, members in sorted(_strata(rows).items()):
        rng = random.Random(f"{seed}:{key}")
        by_answer: dict[str, list[int]] = defaultdict(list)
        for index in members:
            by_answer[question_and_gold(rows[index])[1]].append(index)
        answers = sorted(by_answer)
        rng.shuffle(answers)
        order = []
        for answer in answers:
            group = by_answer[answer]
            rng.shuffle(group)
            order += group
        largest = max(map(len, by_answer.values()))
        shift = largest if largest < len(order) else 1
        for place, index in enumerate(order):
            partners[index] = order[(place + shift) % len(order)]
    return partners


def _blank(image: str, folder: Path) -> str:
    """The path of a white image of `image`'s size in `folder`, written once."""
    with Image.open(image) as opened:
        width, height = opened.size
    path = folder / f"blank-{width}x{height}.png"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (width, height), (255, 255, 255)).save(path)
    return str(path)


def _with_images(row: dict[str, Any], images: list[str]) -> dict[str, Any]:
    if not row_images(row):
        return row
    new = {key: value for key, value in row.items() if key not in ("image", "images")}
    return new | ({"image": images[0]} if len(images) == 1 else {"images": images})


def ablated_rows(
    rows: list[dict[str, Any]], condition: str, partners: Sequence[int], blank_folder: Path
) -> list[dict[str, Any]]:
    """`rows` with their images blanked (white images written to `blank_folder`) or swapped
    for their `partners`' images; everything else as it was."""
    if condition == "swap":
        pairs = zip(rows, partners, strict=True)
        return [_with_images(row, row_images(rows[partner])) for row, partner in pairs]
    return [_with_images(row, [_blank(i, blank_folder) for i in row_images(row)]) for row in rows]


def permutation_null(
    golds: Sequence[str],
    predictions: Sequence[str | None],
    strata: Sequence[Any],
    *,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> np.ndarray:
    """Accuracy (permutations,) of `predictions` shuffled within each stratum against
    `golds` (n_rows each), judged by `observe_r1.evaluation.prior.judged`; each pair of distinct
    gold and prediction judged once."""
    rng = np.random.default_rng(seed)
    hits = np.zeros(permutations)
    groups: dict[Any, list[int]] = defaultdict(list)
    for index, key in enumerate(strata):
        groups[key].append(index)
    for key in sorted(groups, key=repr):
        indices = groups[key]
        gold_values = {g: k for k, g in enumerate(sorted({golds[i] for i in indices}))}
        said = {p: k for k, p in enumerate(sorted({predictions[i] for i in indices}, key=repr))}
        verdict = np.array([[judged(g, p) for p in said] for g in gold_values])  # (G, P)
        gold_at = np.array([gold_values[golds[i]] for i in indices])
        said_at = np.array([said[predictions[i]] for i in indices])
        shuffled = rng.permuted(np.tile(said_at, (permutations, 1)), axis=1)  # (perms, m)
        hits += verdict[gold_at[None, :], shuffled].sum(axis=1)
    return hits / len(golds)


def _first_correct(records: list[dict[str, Any]]) -> np.ndarray:
    """Correctness (n_rows,) of each row's first sample."""
    firsts = sorted((r for r in records if r["sample"] == 0), key=lambda r: r["row"])
    return np.array([r["correct"] for r in firsts], dtype=float)


def _interval(a: np.ndarray, b: np.ndarray, seed: int) -> dict[str, float]:
    difference, low, high = paired_bootstrap(a, b, seed=seed)
    return {"difference": difference, "ci95_low": low, "ci95_high": high}


def image_reliance(
    rows: list[dict[str, Any]],
    records: list[dict[str, Any]],
    ablated: dict[str, list[dict[str, Any]]],
    partners: Sequence[int],
    *,
    seed: int = 0,
    permutations: int = PERMUTATIONS,
) -> dict[str, Any]:
    """The ``image_ablation`` block of ``eval.json`` from the real rows' `records` and each
    condition's records in `ablated` (`observe_r1.evaluation.evaluate.prediction_records`, first
    samples scored); `partners` from `swap_partners(rows, seed)`."""
    real = _first_correct(records)
    prior = prior_accuracy(rows)
    report: dict[str, Any] = {"conditions": list(ablated), "seed": seed, "rows": len(rows)}
    report |= {key: prior[key] for key in ("prior_accuracy", "chance_accuracy")}
    report["accuracy"] = {"real": float(real.mean())} | {
        condition: float(_first_correct(found).mean()) for condition, found in ablated.items()
    }
    if "swap" in ablated:
        swapped = _first_correct(ablated["swap"])
        report["image_grounded_accuracy"] = _interval(real, swapped, seed)
        golds = [question_and_gold(row)[1] for row in rows]
        report["swap_same_answer_rows"] = sum(
            judged(golds[i], golds[p]) for i, p in enumerate(partners)
        )
    if "blank" in ablated:
        report["real_minus_blank"] = _interval(real, _first_correct(ablated["blank"]), seed)
    firsts = sorted((r for r in records if r["sample"] == 0), key=lambda r: r["row"])
    null = permutation_null(
        [r["gold"] for r in firsts],
        [r["prediction"] for r in firsts],
        [stratum(row) for row in rows],
        permutations=permutations,
        seed=seed,
    )
    report["permutation_null"] = {
        "permutations": permutations,
        "accuracy": float(null.mean()),
        "p_value": float((1 + np.sum(null >= real.mean() - 1e-12)) / (1 + permutations)),
    }
    return report
