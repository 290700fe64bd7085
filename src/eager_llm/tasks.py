"""EAGER-LLM instruction-tuning samples: one builder per task, prompt pools from package data.

Every sample is a (prompt, response, task, target) record; ``target`` is the item the
response names or describes. The tasks:

- ``seqrec``: index history -> the next item's index;
- ``item2index``: item text (title, categories, description) -> the item's index;
- ``index2item``: an item's index -> its text;
- ``fusion_index2title``: index history -> the next item's title;
- ``fusion_title2index``: title history -> the next item's index;
- ``item_search``: a user's review of a training item -> the item's index;
- ``preference_extraction``: index history -> the user's stated preference, the summaries of
  the user's reviews of those items.

The two review tasks (:data:`REVIEW_TASKS`) read only reviews of training items (never of a
validation or test target) and give no samples on data without review text.

History tasks read the users' training sequences: every prefix (each item after the first is
a target, :meth:`LeaveOneOut.train_examples`) or ``prefixes_per_user`` of them drawn per
user; a history is the last ``max_history`` items before its target.

``seqrec`` can also supervise every history item (``seqrec_labels="every"``): a causal LM
reading ``i1, i2, ..., iN`` predicts each ``i(k+1)`` from the instruction and ``i1..ik`` in
the same forward pass, so a sample then carries the character spans of its history items
(after the first) as extra labels (:attr:`Sample.labelled_spans`), and the histories tile
each sequence (windows ``max_history`` apart) so every training transition is labelled
once. "last" (the paper's) labels the response only. Indices are written as
their concatenated tokens (``<a_12><b_201>``) and histories joined by ``", "``; titles in a
history are quoted.

Instructions come from ``prompts/tasks.json`` (a pool per task) and are wrapped in a
template from ``prompts/templates.json`` (``short``, the CPU default, or the paper's
``alpaca``). A task draws its prefixes and instructions from ``random.Random(f"{seed}:{task}")``,
so its samples depend only on the seed and its inputs, not on which other tasks run.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import NamedTuple

import numpy as np

from eager_llm.data import ItemCatalog, ItemText, LeaveOneOut, Review


class Sample(NamedTuple):
    """One instruction: ``prompt`` (template applied) -> ``response`` (no EOS);
    ``labelled_spans``: ``(start, end)`` character spans of ``prompt`` that are labels too."""

    prompt: str
    response: str
    task: str
    target: int
    labelled_spans: tuple[tuple[int, int], ...] = ()


SEQREC_LABELS = ("last", "every")


@cache
def prompt_pools() -> dict[str, list[str]]:
    """Task -> its instruction pool (``{history}``, ``{item}`` or ``{index}`` placeholders)."""
    return json.loads(files("eager_llm").joinpath("prompts/tasks.json").read_text())


@cache
def templates() -> dict[str, str]:
    """Template name -> text with an ``{instruction}`` placeholder."""
    return json.loads(files("eager_llm").joinpath("prompts/templates.json").read_text())


def apply_template(template: str, instruction: str) -> str:
    """The prompt of ``instruction`` under the named template."""
    if template not in templates():
        raise ValueError(f"unknown template {template!r} (known: {', '.join(templates())})")
    return templates()[template].format(instruction=instruction)


def item_text(item: ItemText, description_words: int = 50) -> str:
    """``Title: ...`` then, when present, ``Categories: ...`` and ``Description: ...`` lines;
    the description keeps its first ``description_words`` words."""
    lines = [f"Title: {item.title.strip()}"]
    if item.categories:
        lines.append("Categories: " + ", ".join(item.categories))
    if words := item.description.split()[:description_words]:
        lines.append("Description: " + " ".join(words))
    return "\n".join(lines)


@dataclass(frozen=True)
class TaskData:
    """What the builders read; items are the integer indices of the dataset split.

    Attributes:
        train: per user, the training item indices in time order.
        indices: per item, its index tokens concatenated (``"<a_12><b_201>"``).
        titles: per item, its title.
        texts: per item, :func:`item_text`.
        max_history: the most items a history keeps.
        reviews: per user, training item -> the user's review of it (text cut to
            ``description_words``); empty without review text.
    """

    train: list[np.ndarray]
    indices: list[str]
    titles: list[str]
    texts: list[str]
    max_history: int = 20
    reviews: list[dict[int, Review]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        split: LeaveOneOut,
        item_ids: Sequence[str],
        catalog: ItemCatalog,
        item_index: Mapping[str, Sequence[str]],
        description_words: int = 50,
        reviews: Sequence[Mapping[int, Review]] = (),
    ) -> TaskData:
        """From a split whose item ``i`` is ``item_ids[i]``; every item needs an index.
        ``reviews``: per user, item -> review (:func:`eager_llm.data.reviews_by_user`)."""
        if missing := [item_id for item_id in item_ids if item_id not in item_index]:
            raise ValueError(f"{len(missing)} items have no index (first: {missing[0]!r})")
        return cls(
            train=split.train,
            indices=["".join(item_index[item_id]) for item_id in item_ids],
            titles=[catalog[item_id].title.strip() for item_id in item_ids],
            texts=[item_text(catalog[item_id], description_words) for item_id in item_ids],
            max_history=split.max_history,
            reviews=_training_reviews(split.train, reviews, description_words),
        )


def _cut(review: Review, words: int) -> Review:
    """``review`` with its summary stripped and its text cut to ``words`` words."""
    return Review(review.summary.strip(), " ".join(review.text.split()[:words]))


def _training_reviews(
    train: Sequence[np.ndarray], reviews: Sequence[Mapping[int, Review]], words: int
) -> list[dict[int, Review]]:
    """Per user, the reviews of its training items, summary stripped and text cut to
    ``words`` words (empty without reviews)."""
    if not reviews:
        return []
    return [
        {item: _cut(written[item], words) for item in sequence.tolist() if item in written}
        for sequence, written in zip(train, reviews, strict=True)
    ]


def _prefixes(
    data: TaskData, rng: random.Random, prefixes_per_user: int | None
) -> list[tuple[list[int], int]]:
    """(history, target) of every chosen prefix: all of them, or ``prefixes_per_user`` drawn
    per user (kept in time order)."""
    chosen = []
    for sequence in data.train:
        items = sequence.tolist()
        ends = range(1, len(items))
        if prefixes_per_user is not None and prefixes_per_user < len(ends):
            ends = sorted(rng.sample(ends, prefixes_per_user))
        chosen += [(items[max(0, end - data.max_history) : end], items[end]) for end in ends]
    return chosen


def _tiling_windows(data: TaskData) -> list[tuple[list[int], int]]:
    """(history, target) windows ``max_history`` apart, from each sequence's end: the first
    history item of one window is the target of the one before, so labelling every history
    item after the first and the target covers each transition exactly once."""
    windows = []
    for sequence in data.train:
        items = sequence.tolist()
        ends = range(len(items) - 1, 0, -data.max_history)[::-1]  # in time order
        windows += [(items[max(0, end - data.max_history) : end], items[end]) for end in ends]
    return windows


def seqrec(
    data: TaskData,
    rng: random.Random,
    template: str,
    prefixes_per_user: int | None = None,
    labels: str = "last",
) -> list[Sample]:
    """Index history -> next index; ``labels="every"`` also labels each history item after
    the first, over tiling windows (``prefixes_per_user`` then does not apply)."""
    if labels not in SEQREC_LABELS:
        raise ValueError(f"seqrec labels must be one of {', '.join(SEQREC_LABELS)}")
    pool = prompt_pools()["seqrec"]
    every = labels == "every"
    samples = []
    for history, target in (
        _tiling_windows(data) if every else _prefixes(data, rng, prefixes_per_user)
    ):
        text = ", ".join(data.indices[item] for item in history)
        prompt = apply_template(template, rng.choice(pool).format(history=text))
        spans = (
            _history_spans(prompt, text, [data.indices[i] for i in history])[1:] if every else ()
        )
        samples.append(Sample(prompt, data.indices[target], "seqrec", target, spans))
    return samples


def _history_spans(prompt: str, text: str, indices: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Character spans in ``prompt`` of each index of the history ``text`` (``", "``-joined)."""
    start = prompt.index(text)
    spans = []
    for index in indices:
        spans.append((start, start + len(index)))
        start += len(index) + 2
    return tuple(spans)


def item2index(data: TaskData, rng: random.Random, template: str) -> list[Sample]:
    """Item text -> index, one sample per item."""
    pool = prompt_pools()["item2index"]
    return [
        Sample(
            apply_template(template, rng.choice(pool).format(item=text)),
            data.indices[item],
            "item2index",
            item,
        )
        for item, text in enumerate(data.texts)
    ]


def index2item(data: TaskData, rng: random.Random, template: str) -> list[Sample]:
    """Index -> item text, one sample per item."""
    pool = prompt_pools()["index2item"]
    return [
        Sample(
            apply_template(template, rng.choice(pool).format(index=index)),
            data.texts[item],
            "index2item",
            item,
        )
        for item, index in enumerate(data.indices)
    ]


def fusion_index2title(
    data: TaskData, rng: random.Random, template: str, prefixes_per_user: int | None = None
) -> list[Sample]:
    """Index history -> next title."""
    pool = prompt_pools()["fusion_index2title"]
    samples = []
    for history, target in _prefixes(data, rng, prefixes_per_user):
        text = ", ".join(data.indices[item] for item in history)
        prompt = apply_template(template, rng.choice(pool).format(history=text))
        samples.append(Sample(prompt, data.titles[target], "fusion_index2title", target))
    return samples


def fusion_title2index(
    data: TaskData, rng: random.Random, template: str, prefixes_per_user: int | None = None
) -> list[Sample]:
    """Title history -> next index."""
    pool = prompt_pools()["fusion_title2index"]
    samples = []
    for history, target in _prefixes(data, rng, prefixes_per_user):
        text = ", ".join(f'"{data.titles[item]}"' for item in history)
        prompt = apply_template(template, rng.choice(pool).format(history=text))
        samples.append(Sample(prompt, data.indices[target], "fusion_title2index", target))
    return samples


def item_search(
    data: TaskData, rng: random.Random, template: str, prefixes_per_user: int | None = None
) -> list[Sample]:
    """A user's review of a training item -> the item's index: every training review with
    text, or ``prefixes_per_user`` of them drawn per user (kept in time order)."""
    pool = prompt_pools()["item_search"]
    samples = []
    for sequence, reviews in zip(data.train, data.reviews, strict=False):  # none: no samples
        written = [item for item in sequence.tolist() if item in reviews and reviews[item].text]
        if prefixes_per_user is not None and prefixes_per_user < len(written):
            kept = sorted(rng.sample(range(len(written)), prefixes_per_user))
            written = [written[position] for position in kept]
        for item in written:
            prompt = apply_template(template, rng.choice(pool).format(review=reviews[item].text))
            samples.append(Sample(prompt, data.indices[item], "item_search", item))
    return samples


def preference_extraction(data: TaskData, rng: random.Random, template: str) -> list[Sample]:
    """Index history (the last ``max_history`` training items) -> the summaries of the user's
    reviews of those items, oldest first, ``"; "``-joined; one sample per user with a summary,
    its target the last history item."""
    pool = prompt_pools()["preference_extraction"]
    samples = []
    for sequence, reviews in zip(data.train, data.reviews, strict=False):  # none: no samples
        history = sequence.tolist()[-data.max_history :]
        summaries = [reviews[item].summary for item in history if item in reviews]
        if not (said := [summary for summary in summaries if summary]):
            continue
        text = ", ".join(data.indices[item] for item in history)
        prompt = apply_template(template, rng.choice(pool).format(history=text))
        samples.append(Sample(prompt, "; ".join(said), "preference_extraction", history[-1]))
    return samples


# Tasks whose samples ``prefixes_per_user`` draws per user, and those with one per item or user.
DRAWN_TASKS = {
    "seqrec": seqrec,
    "fusion_index2title": fusion_index2title,
    "fusion_title2index": fusion_title2index,
    "item_search": item_search,
}
ONE_EACH_TASKS = {
    "item2index": item2index,
    "index2item": index2item,
    "preference_extraction": preference_extraction,
}
REVIEW_TASKS = ("item_search", "preference_extraction")
TASKS = (
    "seqrec",
    "item2index",
    "index2item",
    "fusion_index2title",
    "fusion_title2index",
    *REVIEW_TASKS,
)


def build_samples(
    data: TaskData,
    tasks: Sequence[str] = TASKS,
    *,
    seed: int = 0,
    template: str = "short",
    prefixes_per_user: int | None = None,
    seqrec_labels: str = "last",
) -> list[Sample]:
    """The samples of ``tasks``, task by task in the given order (``seqrec_labels``: see
    :func:`seqrec`)."""
    if unknown := [task for task in tasks if task not in TASKS]:
        raise ValueError(f"unknown task {unknown[0]!r} (known: {', '.join(TASKS)})")
    samples = []
    for task in tasks:
        rng = random.Random(f"{seed}:{task}")
        if task in ONE_EACH_TASKS:
            samples += ONE_EACH_TASKS[task](data, rng, template)
        elif task == "seqrec":
            samples += seqrec(data, rng, template, prefixes_per_user, seqrec_labels)
        else:
            samples += DRAWN_TASKS[task](data, rng, template, prefixes_per_user)
    return samples


def recommendation_prompt(
    history: Sequence[str], template: str = "short", instruction: int = 0
) -> str:
    """The inference prompt for a history of item indices (token strings joined per item):
    the ``seqrec`` instruction number ``instruction`` (the first by default) under
    ``template``."""
    text = prompt_pools()["seqrec"][instruction].format(history=", ".join(history))
    return apply_template(template, text)


def history_prompts(
    item_indices: Sequence[str],
    histories: Sequence[Sequence[int]],
    max_history: int,
    template: str = "short",
) -> list[str]:
    """The :func:`recommendation_prompt` of each history (item positions, oldest first),
    from ``item_indices`` (position -> joined index tokens), last ``max_history`` items."""
    return [
        recommendation_prompt([item_indices[i] for i in history[-max_history:]], template)
        for history in histories
    ]
