"""Evaluation of a VLM on canonical rows: accuracy, format rate, length, per level/family.

Scoring is pure (:func:`score`, :func:`prediction_records`); generation is batched through
``model.generate`` (:func:`generate_responses`). Rows with ``choices`` (MathVista style: the
gold is the text of one choice or its letter) are asked as lettered options and scored on
the letter.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from math import comb
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from observe_r1.prompts import TAGS, conversation
from observe_r1.rewards import accuracy_reward, extract_answer, format_reward

LETTERS = "ABCDEFGH"


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


def pass_at_k(n: int, correct: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``correct`` are right (Chen et al., 2021)."""
    if n - correct < k:
        return 1.0
    return 1.0 - comb(n - correct, k) / comb(n, k)


def score(
    rows: list[dict[str, Any]], responses: Responses, *, response_format: str = "observe"
) -> dict[str, Any]:
    """Metrics over rows. Accuracy, format rate and lengths use each row's first sample;
    ``pass@k`` (k = 1, 2, 4, ... up to the samples per row) uses all of them."""
    tags = TAGS[response_format]
    golds = [question_and_gold(row)[1] for row in rows]
    correct = [
        [accuracy_reward(text, gold) == 1.0 for text in texts]
        for texts, gold in zip(responses.texts, golds, strict=True)
    ]
    formatted = [format_reward(texts[0], tags=tags) > 0 for texts in responses.texts]
    first_tokens = [tokens[0] for tokens in responses.tokens]
    by_level: dict[str, list[bool]] = defaultdict(list)
    by_family: dict[str, list[bool]] = defaultdict(list)
    for row, hits in zip(rows, correct, strict=True):
        by_level[str(row.get("level", "all"))].append(hits[0])
        by_family[str(row.get("family", "all"))].append(hits[0])
    samples = len(responses.texts[0])
    ks = [k for k in (1, 2, 4, 8, 16, 32) if k <= samples]
    mean = statistics.fmean
    return {
        "rows": len(rows),
        "samples_per_row": samples,
        "accuracy": mean(h[0] for h in correct),
        "format_rate": mean(formatted),
        "mean_tokens": mean(first_tokens),
        "median_tokens": statistics.median(first_tokens),
        "pass_at_k": {
            f"pass@{k}": mean(pass_at_k(samples, sum(h), k) for h in correct) for k in ks
        },
        "accuracy_by_level": {k: mean(v) for k, v in sorted(by_level.items())},
        "accuracy_by_family": {k: mean(v) for k, v in sorted(by_family.items())},
        "majority_answer_baseline": majority_baseline(golds),
    }


def prediction_records(
    rows: list[dict[str, Any]], responses: Responses, *, response_format: str = "observe"
) -> list[dict[str, Any]]:
    """One record per row and sample, to read what the model said: the row's ``id``,
    family, level, gold (a letter for choice rows), the extracted answer (None when the
    response has no single answer block), correct, formatted, tokens and the response."""
    tags = TAGS[response_format]
    records = []
    for row, texts, tokens in zip(rows, responses.texts, responses.tokens, strict=True):
        gold = question_and_gold(row)[1]
        for sample, (text, length) in enumerate(zip(texts, tokens, strict=True)):
            records.append(
                {
                    "id": row.get("id"),
                    "sample": sample,
                    "family": row.get("family"),
                    "level": row.get("level"),
                    "gold": gold,
                    "prediction": extract_answer(text),
                    "correct": accuracy_reward(text, gold) == 1.0,
                    "formatted": format_reward(text, tags=tags) > 0,
                    "tokens": length,
                    "response": text,
                }
            )
    return records


def majority_baseline(golds: list[str]) -> float:
    """Accuracy of always answering the most common gold answer."""
    most_common = max(set(golds), key=golds.count)
    return golds.count(most_common) / len(golds)


@torch.no_grad()
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
    progress=None,
) -> Responses:
    """Greedy (``samples=1``) or sampled responses for every row, batched."""
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"
    texts, tokens = [], []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        prompts = [
            processor.apply_chat_template(
                conversation(question_and_gold(row)[0], response_format),
                add_generation_prompt=True,
                tokenize=False,
            )
            for row in batch
        ]
        images = [Image.open(row["image"]).convert("RGB") for row in batch]
        inputs = processor(text=prompts, images=images, return_tensors="pt", padding=True)
        inputs = inputs.to(model.device)
        sampling = {"temperature": temperature} if samples > 1 else {}
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            num_return_sequences=samples,
            do_sample=samples > 1,
            pad_token_id=tokenizer.pad_token_id,
            **sampling,
        )
        completions = output[:, inputs["input_ids"].shape[1] :]
        lengths = (completions != tokenizer.pad_token_id).sum(dim=1).tolist()
        decoded = tokenizer.batch_decode(completions, skip_special_tokens=True)
        for i in range(len(batch)):
            texts.append(decoded[i * samples : (i + 1) * samples])
            tokens.append(lengths[i * samples : (i + 1) * samples])
        if progress:
            progress(len(batch))
    return Responses(texts, tokens)


def evaluate_model(
    model: str,
    rows: list[dict[str, Any]],
    *,
    response_format: str = "observe",
    progress=None,
    **generation: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Load ``model`` (zoo name, HF id or folder), answer ``rows``: (:func:`score` metrics,
    :func:`prediction_records`).

    ``generation``: the keyword arguments of :func:`generate_responses`.
    """
    from transformers import AutoModelForImageTextToText

    from model_zoo import resolve
    from model_zoo.processors import load_processor

    folder = resolve(model)
    vlm = AutoModelForImageTextToText.from_pretrained(folder).eval()
    responses = generate_responses(
        vlm,
        load_processor(folder),
        rows,
        response_format=response_format,
        progress=progress,
        **generation,
    )
    return (
        score(rows, responses, response_format=response_format),
        prediction_records(rows, responses, response_format=response_format),
    )


def write_report(
    metrics: dict[str, Any],
    out: Path,
    title: str,
    records: list[dict[str, Any]] | None = None,
) -> None:
    """``eval.json``, ``eval.md`` (tables), ``eval.png`` (accuracy per level and family) and,
    given ``records``, ``predictions.jsonl`` (one line per row and sample)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(metrics, indent=2))
    if records is not None:
        lines = [json.dumps(record, ensure_ascii=False) for record in records]
        (out / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    lines = [f"# {title}", "", "| metric | value |", "| --- | --- |"]
    for key in ("rows", "samples_per_row", "accuracy", "format_rate", "mean_tokens",
                "median_tokens", "majority_answer_baseline"):  # fmt: skip
        value = metrics[key]
        lines.append(
            f"| {key} | {value:.3f} |" if isinstance(value, float) else f"| {key} | {value} |"
        )
    lines += [f"| {k} | {v:.3f} |" for k, v in metrics["pass_at_k"].items()]
    for group in ("accuracy_by_level", "accuracy_by_family"):
        lines += ["", f"| {group.removeprefix('accuracy_by_')} | accuracy |", "| --- | --- |"]
        lines += [f"| {k} | {v:.3f} |" for k, v in metrics[group].items()]
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
