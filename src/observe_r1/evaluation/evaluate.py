"""Evaluation of a VLM on canonical rows: accuracy, format rate, length, per level/family.

Scoring is pure (each response judged once by :func:`prediction_records`, then
:func:`metrics_from_records`); generation is batched through ``model.generate``
(:func:`generate_responses`). Rows with ``choices`` (MathVista style: the
gold is the text of one choice or its letter) are asked as lettered options and scored on
the letter. Synthetic rows also carry the exact ``caption`` of their image:
:func:`observation_recall` then says how much of it the ``<observe>`` block got right,
separating failures to see from failures to reason.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from math import comb
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from observe_r1.data.prompts import TAGS, conversation
from observe_r1.data.rows import InputError, row_images
from observe_r1.evaluation.generation import Decoding, generate_ids, stop_ids
from observe_r1.evaluation.resume import PartialResponses
from observe_r1.rewards import accuracy_reward, extract_answer, format_reward

LETTERS = "ABCDEFGH"
REPORT_FILES = (  # in the --out folder; the last two with --image-ablation
    "eval.json", "eval.md", "eval.png", "predictions.jsonl",
    "predictions.blank.jsonl", "predictions.swap.jsonl",
)  # fmt: skip
NUMBER = re.compile(r"\d+(?:\.\d+)?")
OBSERVE_BLOCK = re.compile(r"<observe>(.*?)</observe>", re.S)
EVAL_TOP_K = 50  # `generate`'s default, which sampled evaluation has always used


@dataclass
class Responses:
    """``texts[i][j]``: sample j for row i; ``tokens[i][j]`` its length in tokens."""

    texts: list[list[str]]
    tokens: list[list[int]]


def question_and_gold(row: dict[str, Any]) -> tuple[str, str]:
    """The question as asked (choices lettered) and the gold answer to score against."""
    choices = row.get("choices")
    if not choices:
        return row["question"], str(row["answer"])
    options = "\n".join(f"{LETTERS[i]}. {choice}" for i, choice in enumerate(choices))
    gold = str(row["answer"]).strip()
    if gold in map(str, choices):
        gold = LETTERS[[str(c) for c in choices].index(gold)]
    return f"{row['question']}\nOptions:\n{options}\nAnswer with the option's letter.", gold


def row_conversation(row: dict[str, Any], response_format: str = "observe"):
    """The chat messages of a row as every stage asks it: one image placeholder per image of
    the row, in order (none for a text-only row), then the question (choices lettered)."""
    question = question_and_gold(row)[0]
    return conversation(question, response_format, images=len(row_images(row)))


def open_images(rows: list[dict[str, Any]]) -> list[Image.Image] | None:
    """The images of ``rows``, flat and in order (RGB), as processors take them for a batch
    whose prompts hold one placeholder per image; None when the batch has no image."""
    images = []
    for row in rows:
        for path in row_images(row):
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
    return images or None


def pass_at_k(n: int, correct: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``correct`` are right (Chen et al., 2021)."""
    if n - correct < k:
        return 1.0
    return 1.0 - comb(n - correct, k) / comb(n, k)


def observation_recall(response: str, caption: str | None) -> float | None:
    """Share of the numbers in ``caption`` (counted with multiplicity) that the response's
    first ``<observe>`` block states; 0 without such a block. None when there is no caption
    or it holds no number (nothing to check)."""
    wanted = Counter(NUMBER.findall(caption or ""))
    if not wanted:
        return None
    block = OBSERVE_BLOCK.search(response)
    stated = Counter(NUMBER.findall(block.group(1) if block else ""))
    return sum((wanted & stated).values()) / sum(wanted.values())


def prediction_records(
    rows: list[dict[str, Any]], responses: Responses, *, response_format: str = "observe"
) -> list[dict[str, Any]]:
    """Every response judged once: one record per row and sample with the row's index
    (``row``) and ``id``, family, level, gold (a letter for choice rows), the extracted
    answer (None when the response has no single answer block), correct, formatted, tokens,
    :func:`observation_recall` against the row's caption and the response itself."""
    tags = TAGS[response_format]
    records = []
    for index, (row, texts, tokens) in enumerate(
        zip(rows, responses.texts, responses.tokens, strict=True)
    ):
        gold = question_and_gold(row)[1]
        for sample, (text, length) in enumerate(zip(texts, tokens, strict=True)):
            records.append(
                {
                    "row": index,
                    "id": row.get("id"),
                    "sample": sample,
                    "family": row.get("family"),
                    "level": row.get("level"),
                    "gold": gold,
                    "prediction": extract_answer(text),
                    "correct": accuracy_reward(text, gold) == 1.0,
                    "formatted": format_reward(text, tags=tags) > 0,
                    "tokens": length,
                    "observation_recall": observation_recall(text, row.get("caption")),
                    "response": text,
                }
            )
    return records


def _group_name(value: Any) -> str:
    return "all" if value is None else str(value)


def metrics_from_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics over :func:`prediction_records`. Accuracy, format rate and lengths use each
    row's first sample, as does ``observation_recall`` (mean over rows with a caption, None
    without any); ``pass@k`` (k = 1, 2, 4, ... up to the samples per row) uses all."""
    by_row: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_row[record["row"]].append(record)
    groups = [by_row[index] for index in sorted(by_row)]
    firsts = [group[0] for group in groups]
    by_level: dict[str, list[bool]] = defaultdict(list)
    by_family: dict[str, list[bool]] = defaultdict(list)
    recall_by_family: dict[str, list[float]] = defaultdict(list)
    for first in firsts:
        by_level[_group_name(first["level"])].append(first["correct"])
        by_family[_group_name(first["family"])].append(first["correct"])
        if first.get("observation_recall") is not None:
            recall_by_family[_group_name(first["family"])].append(first["observation_recall"])
    samples = len(groups[0])
    ks = [k for k in (1, 2, 4, 8, 16, 32) if k <= samples]
    tokens = [first["tokens"] for first in firsts]
    mean = statistics.fmean
    recalls = [recall for values in recall_by_family.values() for recall in values]
    return {
        "rows": len(groups),
        "samples_per_row": samples,
        "accuracy": mean(first["correct"] for first in firsts),
        "format_rate": mean(first["formatted"] for first in firsts),
        "mean_tokens": mean(tokens),
        "median_tokens": statistics.median(tokens),
        "pass_at_k": {
            f"pass@{k}": mean(pass_at_k(samples, sum(r["correct"] for r in g), k) for g in groups)
            for k in ks
        },
        "accuracy_by_level": {k: mean(v) for k, v in sorted(by_level.items())},
        "accuracy_by_family": {k: mean(v) for k, v in sorted(by_family.items())},
        "majority_answer_baseline": majority_baseline([first["gold"] for first in firsts]),
        "observation_recall": mean(recalls) if recalls else None,
        "observation_recall_by_family": {k: mean(v) for k, v in sorted(recall_by_family.items())},
    }


def score(
    rows: list[dict[str, Any]], responses: Responses, *, response_format: str = "observe"
) -> dict[str, Any]:
    """:func:`metrics_from_records` of the rows' :func:`prediction_records`."""
    records = prediction_records(rows, responses, response_format=response_format)
    return metrics_from_records(records)


def majority_baseline(golds: list[str]) -> float:
    """Accuracy of always answering the most common gold answer."""
    most_common = max(set(golds), key=golds.count)
    return golds.count(most_common) / len(golds)


def generate_responses(
    model,
    processor,
    rows: list[dict[str, Any]],
    *,
    response_format: str = "observe",
    samples: int = 1,
    temperature: float = 1.0,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    seed: int | None = None,
    partial: PartialResponses | None = None,
    progress=None,
    shared_prefix: bool = True,
    precision: str = "fp32",
) -> Responses:
    """Greedy (``samples=1``) or sampled responses for every row, in row order; batched by
    prompt length (the rows sorted by their prompt's token count, ties in row order, then cut
    every ``batch_size``: little padding), each prompt prefilled once and finished rows dropped
    from the batch (`observe_r1.evaluation.generation`; ``shared_prefix=False``: plain
    ``model.generate``). Sampling keeps ``generate``'s default
    top-k of 50 that this evaluator has always drawn with. A response's ``tokens`` count
    its stop token, as the ladder and the trainer count. ``precision``: ``"fp32"`` or
    ``"bf16"`` autocast.

    ``seed``: sampling draws from ``torch.manual_seed(seed + the batch's start)`` (its first
    place in the length order), so a batch's samples do not depend on the batches before it
    (None: the global generator). ``partial``: batches answered by an earlier, stopped run
    are taken from it (by start), new ones are added to it (:mod:`observe_r1.evaluation.resume`).
    """
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"
    decoding = Decoding(samples, max_new_tokens, samples > 1, temperature, top_k=EVAL_TOP_K)
    stops = stop_ids(model, tokenizer)
    prompts = [
        processor.apply_chat_template(
            row_conversation(row, response_format), add_generation_prompt=True, tokenize=False
        )
        for row in rows
    ]
    order = length_order(tokenizer, prompts)
    texts: list[list[str]] = [[] for _ in rows]
    tokens: list[list[int]] = [[] for _ in rows]
    for start in range(0, len(rows), batch_size):
        batch = order[start : start + batch_size]
        answered = partial.get(start) if partial else None
        if answered is None:
            answered = _answer_batch(model, processor, [rows[i] for i in batch],
                                     [prompts[i] for i in batch], decoding, stops,
                                     seed=None if seed is None else seed + start,
                                     shared_prefix=shared_prefix, precision=precision)  # fmt: skip
            if partial:
                partial.add(start, *answered)
        for i, row_texts, row_tokens in zip(batch, *answered, strict=True):
            texts[i], tokens[i] = row_texts, row_tokens
        if progress:
            progress(len(batch))
    return Responses(texts, tokens)


def length_order(tokenizer, prompts: list[str]) -> list[int]:
    """Row indices by the prompts' token count (an image placeholder counts once: rows
    differ in their text), ties in row order."""
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False).input_ids]
    return sorted(range(len(prompts)), key=lengths.__getitem__)


def _answer_batch(
    model, processor, rows, prompts, decoding: Decoding, stops, *, seed, shared_prefix, precision
) -> tuple[list[list[str]], list[list[int]]]:
    """``(texts, tokens)`` of one batch: per row its ``decoding.n`` responses and their
    lengths in tokens."""
    tokenizer = processor.tokenizer
    inputs = processor(text=prompts, images=open_images(rows), return_tensors="pt", padding=True)
    if decoding.n > 1 and seed is not None:
        torch.manual_seed(seed)
    completions = generate_ids(
        model,
        inputs.to(model.device),
        decoding,
        stops,
        tokenizer.pad_token_id,
        shared_prefix=shared_prefix,
        precision=precision,
    )
    decoded = tokenizer.batch_decode(completions, skip_special_tokens=True)
    lengths = [len(ids) for ids in completions]
    n = decoding.n
    return (
        [decoded[i * n : (i + 1) * n] for i in range(len(rows))],
        [lengths[i * n : (i + 1) * n] for i in range(len(rows))],
    )


def load_vlm(model: str, device: str = "cpu"):
    """(model in eval mode on ``device``, processor) of a zoo name, HF id or folder;
    `InputError` ``--model NAME: cannot load it (...)`` when it does not load."""
    from transformers import AutoModelForImageTextToText

    from model_zoo import resolve
    from model_zoo.processors import load_processor

    try:
        folder = resolve(model)
        vlm = AutoModelForImageTextToText.from_pretrained(folder).to(device).eval()
        return vlm, load_processor(folder)
    except (OSError, ValueError, RuntimeError) as error:
        raise InputError(f"--model {model}: cannot load it ({error})") from None


def answer_conditions(
    model: str,
    conditions: dict[str, list[dict[str, Any]]],
    *,
    response_format: str = "observe",
    progress=None,
    device: str = "cpu",
    **generation: Any,
) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Load ``model`` on ``device`` and answer the rows of every condition (the real rows,
    the same rows with ablated images, ...) in one batched :func:`generate_responses` pass,
    in the given order (one ``partial`` file resumes all of it): (:func:`prediction_records`
    per condition, the precision answered in, by default bf16 autocast where it pays
    (`model_zoo.hardware.inference_precision`))."""
    from model_zoo.hardware import inference_precision

    vlm, processor = load_vlm(model, device)
    generation.setdefault("precision", inference_precision(vlm.device.type))
    asked = [row for rows in conditions.values() for row in rows]
    responses = generate_responses(
        vlm, processor, asked, response_format=response_format, progress=progress, **generation
    )
    found, start = {}, 0
    for name, rows in conditions.items():
        part = slice(start, start + len(rows))
        mine = Responses(responses.texts[part], responses.tokens[part])
        found[name] = prediction_records(rows, mine, response_format=response_format)
        start += len(rows)
    return found, generation["precision"]


def evaluate_model(
    model: str,
    rows: list[dict[str, Any]],
    *,
    response_format: str = "observe",
    progress=None,
    device: str = "cpu",
    **generation: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Load ``model`` (zoo name, HF id or folder) on ``device``, answer ``rows``:
    (:func:`score` metrics with the ``precision`` answered in, :func:`prediction_records`).

    ``generation``: the keyword arguments of :func:`generate_responses`; ``precision``
    defaults to bf16 autocast where it pays (`model_zoo.hardware.inference_precision`).
    """
    found, precision = answer_conditions(
        model,
        {"real": rows},
        response_format=response_format,
        progress=progress,
        device=device,
        **generation,
    )
    return metrics_from_records(found["real"]) | {"precision": precision}, found["real"]


def check_model(model: str) -> None:
    """Raise `InputError` ``--model NAME: ...`` unless `model` names a zoo model, a model
    folder (with a ``config.json``) or a Hugging Face id
    (:func:`model_zoo.lookup.model_problem`). Cheap: nothing is loaded or built."""
    from model_zoo.lookup import model_problem

    if problem := model_problem(model):
        raise InputError(f"--model {model}: {problem}")


def _ablation_lines(block: dict[str, Any], prior: float | None) -> list[str]:
    """Markdown of the ``image_ablation`` block
    (`observe_r1.evaluation.image_ablation.image_reliance`)."""
    shown = "" if prior is None else f" (prior accuracy {prior:.3f} on these rows)"
    lines = ["", f"Image ablation{shown}:", "", "| images | accuracy |", "| --- | --- |"]
    lines += [f"| {name} | {value:.3f} |" for name, value in block["accuracy"].items()]
    for key, name in (("image_grounded_accuracy", "image-grounded accuracy (real - swap)"),
                      ("real_minus_blank", "real - blank")):  # fmt: skip
        if key in block:
            d = block[key]
            interval = f"[{d['ci95_low']:+.3f}, {d['ci95_high']:+.3f}]"
            lines.append(f"| {name} | {d['difference']:+.3f} {interval} |")
    null = block["permutation_null"]
    lines.append(
        f"| answers permuted within family x level x format ({null['permutations']}) | "
        f"{null['accuracy']:.3f}, p = {null['p_value']:.3g} |"
    )
    if "swap_same_answer_rows" in block:
        lines.append(f"| swapped rows whose partner has the same answer | "
                     f"{block['swap_same_answer_rows']} of {block['rows']} |")  # fmt: skip
    return lines


def write_report(
    metrics: dict[str, Any],
    out: Path,
    title: str,
    records: list[dict[str, Any]] | None = None,
    ablated_records: dict[str, list[dict[str, Any]]] | None = None,
) -> None:
    """``eval.json``, ``eval.md`` (tables; the prior accuracy beside accuracy where
    ``metrics`` hold it), ``eval.png`` (accuracy per level and family) and, given
    ``records``, ``predictions.jsonl`` (one line per row and sample), given
    ``ablated_records``, ``predictions.<condition>.jsonl`` per image ablation."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(metrics, indent=2))
    found = {"predictions.jsonl": records} | {
        f"predictions.{name}.jsonl": found for name, found in (ablated_records or {}).items()
    }
    for name, rows in found.items():
        if rows is not None:
            lines = [json.dumps(record, ensure_ascii=False) for record in rows]
            (out / name).write_text("\n".join(lines) + "\n")
    lines = [f"# {title}", "", "| metric | value |", "| --- | --- |"]
    for key in ("rows", "samples_per_row", "accuracy", "prior_accuracy", "chance_accuracy",
                "format_rate", "mean_tokens", "median_tokens", "majority_answer_baseline",
                "observation_recall", "precision"):  # fmt: skip
        value = metrics.get(key)
        if value is None:
            continue
        lines.append(
            f"| {key} | {value:.3f} |" if isinstance(value, float) else f"| {key} | {value} |"
        )
    lines += [f"| {k} | {v:.3f} |" for k, v in metrics["pass_at_k"].items()]
    for group in ("level", "family"):
        priors = metrics.get(f"prior_accuracy_by_{group}")
        head = f"| {group} | accuracy |" + (" prior | chance |" if priors else "")
        lines += ["", head, "| --- " * (4 if priors else 2) + "|"]
        for key, value in metrics[f"accuracy_by_{group}"].items():
            extra = ""
            if priors:
                chance = metrics[f"chance_accuracy_by_{group}"][key]
                extra = f" {priors[key]:.3f} | {chance:.3f} |"
            lines.append(f"| {key} | {value:.3f} |{extra}")
    if metrics.get("observation_recall_by_family"):
        lines += ["", "| family | observation recall |", "| --- | --- |"]
        lines += [f"| {k} | {v:.3f} |" for k, v in metrics["observation_recall_by_family"].items()]
    if "image_ablation" in metrics:
        lines += _ablation_lines(metrics["image_ablation"], metrics.get("prior_accuracy"))
    (out / "eval.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for axis, group in zip(axes, ("accuracy_by_level", "accuracy_by_family"), strict=True):
        values = metrics[group]
        axis.bar(list(values), list(values.values()))
        axis.set(title=group.replace("_", " "), ylim=(0, 1), ylabel="accuracy")
        axis.tick_params(axis="x", rotation=30)
    figure.suptitle(
        f"{title}: accuracy {metrics['accuracy']:.3f}, format {metrics['format_rate']:.3f}"
    )
    figure.tight_layout()
    figure.savefig(out / "eval.png", dpi=100)
    plt.close(figure)
