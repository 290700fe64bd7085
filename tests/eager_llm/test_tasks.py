"""Task builders on a hand-made catalogue: exact prompts and responses, determinism."""

import string

import numpy as np
import pytest

from eager_llm import tasks
from eager_llm.data import ItemCatalog, ItemText, LeaveOneOut, Review
from eager_llm.tasks import (
    TASKS,
    Sample,
    TaskData,
    apply_template,
    build_samples,
    item_text,
    prompt_pools,
    recommendation_prompt,
)

ITEM_IDS = ["x0", "x1", "x2", "x3"]
CATALOG = ItemCatalog(
    {
        "x0": ItemText("Alpha", ("Drama",), "A long story about letters"),
        "x1": ItemText("Beta"),
        "x2": ItemText("Gamma, The", ("Comedy", "Crime")),
        "x3": ItemText("Delta", (), "Short."),
    }
)
INDEX = {
    "x0": ["<a_0>", "<b_0>"],
    "x1": ["<a_0>", "<b_1>"],
    "x2": ["<a_1>", "<b_0>"],
    "x3": ["<a_1>", "<b_1>"],
}
SPLIT = LeaveOneOut(
    train=[np.array([0, 1, 2]), np.array([3, 2, 1, 0])], valid=[], test=[], max_history=2
)
POOLS = {  # one instruction per task, so the expected strings are exact
    "seqrec": ["History: {history}. Next?"],
    "item2index": ["Item: {item}. Index?"],
    "index2item": ["Index: {index}. Item?"],
    "fusion_index2title": ["History: {history}. Next title?"],
    "fusion_title2index": ["Titles: {history}. Next index?"],
    "item_search": ["Review: {review}. Index?"],
    "preference_extraction": ["History: {history}. Preference?"],
}
# Per user, item -> review; item 3 is not a training item of user 0 (held out).
REVIEWS = [
    {
        0: Review("Nice", "Loved every letter of it"),
        2: Review(" Fun ", "Funny"),
        3: Review("X", "Y"),
    },
    {3: Review("Short", ""), 1: Review("Meh", "Too plain for me"), 0: Review("Ok", "Fine")},
]
R = "\nResponse:\n"  # the end of the short template


@pytest.fixture
def data():
    return TaskData.build(SPLIT, ITEM_IDS, CATALOG, INDEX, description_words=3)


@pytest.fixture
def one_prompt(monkeypatch):
    monkeypatch.setattr(tasks, "prompt_pools", lambda: POOLS)


def by_task(samples, task):
    return [s for s in samples if s.task == task]


def test_item_text():
    assert item_text(CATALOG["x1"]) == "Title: Beta"
    assert item_text(CATALOG["x0"], 2) == "Title: Alpha\nCategories: Drama\nDescription: A long"
    assert item_text(CATALOG["x2"]) == "Title: Gamma, The\nCategories: Comedy, Crime"


def test_seqrec_every_prefix_with_the_last_items_as_history(data, one_prompt):
    assert by_task(build_samples(data), "seqrec") == [
        Sample(f"History: <a_0><b_0>. Next?{R}", "<a_0><b_1>", "seqrec", 1),
        Sample(f"History: <a_0><b_0>, <a_0><b_1>. Next?{R}", "<a_1><b_0>", "seqrec", 2),
        Sample(f"History: <a_1><b_1>. Next?{R}", "<a_1><b_0>", "seqrec", 2),
        Sample(f"History: <a_1><b_1>, <a_1><b_0>. Next?{R}", "<a_0><b_1>", "seqrec", 1),
        Sample(f"History: <a_1><b_0>, <a_0><b_1>. Next?{R}", "<a_0><b_0>", "seqrec", 0),
    ]


def test_item_and_index_alignment(data, one_prompt):
    samples = build_samples(data, ["item2index", "index2item"])
    assert by_task(samples, "item2index")[0] == Sample(
        f"Item: Title: Alpha\nCategories: Drama\nDescription: A long story. Index?{R}",
        "<a_0><b_0>",
        "item2index",
        0,
    )
    assert by_task(samples, "index2item")[2] == Sample(
        f"Index: <a_1><b_0>. Item?{R}",
        "Title: Gamma, The\nCategories: Comedy, Crime",
        "index2item",
        2,
    )
    assert [s.target for s in samples] == [0, 1, 2, 3] * 2


def test_fusion_tasks(data, one_prompt):
    samples = build_samples(data, ["fusion_index2title", "fusion_title2index"])
    assert by_task(samples, "fusion_index2title")[1] == Sample(
        f"History: <a_0><b_0>, <a_0><b_1>. Next title?{R}", "Gamma, The", "fusion_index2title", 2
    )
    assert by_task(samples, "fusion_title2index")[4] == Sample(
        f'Titles: "Gamma, The", "Beta". Next index?{R}', "<a_0><b_0>", "fusion_title2index", 0
    )


def test_alpaca_template(data, one_prompt):
    sample = build_samples(data, ["seqrec"], template="alpaca")[0]
    assert sample.prompt == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nHistory: <a_0><b_0>. Next?\n\n### Response:\n"
    )
    with pytest.raises(ValueError, match="unknown template 'chatty'"):
        apply_template("chatty", "x")


def test_prefix_sample_per_user(data, one_prompt):
    samples = build_samples(data, ["seqrec"], prefixes_per_user=2, seed=3)
    assert len(samples) == 4  # user 0 has exactly 2 prefixes, user 1 three -> 2 drawn
    assert samples[:2] == build_samples(data, ["seqrec"])[:2]
    assert samples == build_samples(data, ["seqrec"], prefixes_per_user=2, seed=3)


def test_deterministic_in_the_seed_and_independent_across_tasks(data):
    everything = build_samples(data, seed=7)
    assert everything == build_samples(data, seed=7)
    assert by_task(everything, "fusion_title2index") == build_samples(
        data, ["fusion_title2index"], seed=7
    )
    assert [s.task for s in everything] == sorted((s.task for s in everything), key=TASKS.index)
    prompts = {seed: [s.prompt for s in build_samples(data, seed=seed)] for seed in range(5)}
    assert len({tuple(p) for p in prompts.values()}) > 1


def test_unknown_task(data):
    with pytest.raises(ValueError, match="unknown task 'search'"):
        build_samples(data, ["search"])


def test_missing_index():
    with pytest.raises(ValueError, match="1 items have no index"):
        TaskData.build(SPLIT, ITEM_IDS, CATALOG, {k: INDEX[k] for k in ITEM_IDS[:3]})


def test_item_search_reads_the_training_reviews_with_text(one_prompt):
    data = TaskData.build(SPLIT, ITEM_IDS, CATALOG, INDEX, description_words=3, reviews=REVIEWS)
    assert build_samples(data, ["item_search"]) == [  # in time order; no text, no sample
        Sample(f"Review: Loved every letter. Index?{R}", "<a_0><b_0>", "item_search", 0),
        Sample(f"Review: Funny. Index?{R}", "<a_1><b_0>", "item_search", 2),
        Sample(f"Review: Too plain for. Index?{R}", "<a_0><b_1>", "item_search", 1),
        Sample(f"Review: Fine. Index?{R}", "<a_0><b_0>", "item_search", 0),
    ]
    drawn = build_samples(data, ["item_search"], prefixes_per_user=1, seed=1)
    assert [s.target for s in drawn][:1] in ([0], [2]) and [s.target for s in drawn][1:] in (
        [1],
        [0],
    )


def test_preference_extraction_names_the_users_review_summaries(one_prompt):
    data = TaskData.build(SPLIT, ITEM_IDS, CATALOG, INDEX, reviews=REVIEWS)
    assert build_samples(data, ["preference_extraction"]) == [  # the last 2 training items
        Sample(
            f"History: <a_0><b_1>, <a_1><b_0>. Preference?{R}", "Fun", "preference_extraction", 2
        ),
        Sample(
            f"History: <a_0><b_1>, <a_0><b_0>. Preference?{R}",
            "Meh; Ok",
            "preference_extraction",
            0,
        ),
    ]


def test_review_tasks_give_nothing_without_reviews(data):
    assert build_samples(data, ["item_search", "preference_extraction"]) == []


def test_shipped_pools_use_their_placeholders():
    fields = {
        "seqrec": {"history"},
        "item2index": {"item"},
        "index2item": {"index"},
        "fusion_index2title": {"history"},
        "fusion_title2index": {"history"},
        "item_search": {"review"},
        "preference_extraction": {"history"},
    }
    pools = prompt_pools()
    assert set(pools) == set(TASKS)
    for task, pool in pools.items():
        for instruction in pool:
            used = {name for _, name, _, _ in string.Formatter().parse(instruction) if name}
            assert used == fields[task], (task, instruction)


def test_recommendation_prompt_is_the_first_seqrec_instruction():
    prompt = recommendation_prompt(["<a_0><b_0>", "<a_1><b_1>"])
    assert prompt == apply_template(
        "short", prompt_pools()["seqrec"][0].format(history="<a_0><b_0>, <a_1><b_1>")
    )


def test_seqrec_every_label_spans_name_the_history_items_after_the_first(data, one_prompt):
    samples = by_task(build_samples(data, ["seqrec"], seqrec_labels="every"), "seqrec")
    # windows max_history = 2 apart from each sequence's end: [0, 1] -> 2; [3] -> 2, [2, 1] -> 0
    assert [(s.prompt, s.response) for s in samples] == [
        (f"History: <a_0><b_0>, <a_0><b_1>. Next?{R}", "<a_1><b_0>"),
        (f"History: <a_1><b_1>. Next?{R}", "<a_1><b_0>"),
        (f"History: <a_1><b_0>, <a_0><b_1>. Next?{R}", "<a_0><b_0>"),
    ]
    assert [[s.prompt[a:b] for a, b in s.labelled_spans] for s in samples] == [
        ["<a_0><b_1>"],
        [],
        ["<a_0><b_1>"],
    ]


def test_seqrec_every_labels_each_training_transition_once():
    rng = np.random.default_rng(0)
    train = [rng.integers(0, 4, size=n) for n in (1, 2, 5, 23, 41)]
    split = LeaveOneOut(train=train, valid=[], test=[], max_history=20)
    data = TaskData.build(split, ITEM_IDS, CATALOG, INDEX)
    samples = build_samples(data, ["seqrec"], seqrec_labels="every")
    labelled = sum(len(s.labelled_spans) + 1 for s in samples)
    assert labelled == sum(len(sequence) - 1 for sequence in train)
    with pytest.raises(ValueError, match="seqrec labels"):
        build_samples(data, ["seqrec"], seqrec_labels="all")
