"""EAGER-LLM instruction-tuning samples: one builder per task, prompt pools from package data.

Every sample is a (prompt, response, task, target) record; ``target`` is the item the
response names or describes. The tasks:

- ``seqrec``: index history -> the next item's index;
- ``item2index``: item text (title, categories, description) -> the item's index;
- ``index2item``: an item's index -> its text;
- ``fusion_index2title``: index history -> the next item's title;
- ``fusion_title2index``: title history -> the next item's index.

History tasks read the users' training sequences: every prefix (each item after the first is
a target, :meth:`LeaveOneOut.train_examples`) or ``prefixes_per_user`` of them drawn per
user; a history is the last ``max_history`` items before its target. Indices are written as
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
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import NamedTuple

import numpy as np

from eager_llm.data import ItemCatalog, ItemText, LeaveOneOut


class Sample(NamedTuple):
    """One instruction: ``prompt`` (template applied) -> ``response`` (no EOS)."""

    prompt: str
    response: str
    task: str
    target: int


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
    """

    train: list[np.ndarray]
    indices: list[str]
    titles: list[str]
    texts: list[str]
    max_history: int = 20

    @classmethod
    def build(
        cls,
        split: LeaveOneOut,
        item_ids: Sequence[str],
        catalog: ItemCatalog,
        item_index: Mapping[str, Sequence[str]],
        description_words: int = 50,
    ) -> TaskData:
        """From a split whose item ``i`` is ``item_ids[i]``; every item needs an index."""
        if missing := [item_id for item_id in item_ids if item_id not in item_index]:
            raise ValueError(f"{len(missing)} items have no index (first: {missing[0]!r})")
        return cls(
            train=split.train,
            indices=["".join(item_index[item_id]) for item_id in item_ids],
            titles=[catalog[item_id].title.strip() for item_id in item_ids],
            texts=[item_text(catalog[item_id], description_words) for item_id in item_ids],
            max_history=split.max_history,
        )


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


def seqrec(
    data: TaskData, rng: random.Random, template: str, prefixes_per_user: int | None = None
) -> list[Sample]:
    """Index history -> next index."""
    pool = prompt_pools()["seqrec"]
    samples = []
    for history, target in _prefixes(data, rng, prefixes_per_user):
        text = ", ".join(data.indices[item] for item in history)
        prompt = apply_template(template, rng.choice(pool).format(history=text))
        samples.append(Sample(prompt, data.indices[target], "seqrec", target))
    return samples


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


HISTORY_TASKS = {
    "seqrec": seqrec,
    "fusion_index2title": fusion_index2title,
    "fusion_title2index": fusion_title2index,
}
ITEM_TASKS = {"item2index": item2index, "index2item": index2item}
TASKS = ("seqrec", "item2index", "index2item", "fusion_index2title", "fusion_title2index")


def build_samples(
    data: TaskData,
    tasks: Sequence[str] = TASKS,
    *,
    seed: int = 0,
    template: str = "short",
    prefixes_per_user: int | None = None,
) -> list[Sample]:
    """The samples of ``tasks``, task by task in the given order."""
    if unknown := [task for task in tasks if task not in TASKS]:
        raise ValueError(f"unknown task {unknown[0]!r} (known: {', '.join(TASKS)})")
    samples = []
    for task in tasks:
        rng = random.Random(f"{seed}:{task}")
        if task in ITEM_TASKS:
            samples += ITEM_TASKS[task](data, rng, template)
        else:
            samples += HISTORY_TASKS[task](data, rng, template, prefixes_per_user)
    return samples


def recommendation_prompt(history: Sequence[str], template: str = "short") -> str:
    """The inference prompt for a history of item indices (token strings joined per item):
    the first ``seqrec`` instruction under ``template``."""
    instruction = prompt_pools()["seqrec"][0].format(history=", ".join(history))
    return apply_template(template, instruction)


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
