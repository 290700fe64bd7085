"""TIGER baseline: a T5 from scratch on a toy catalogue trains and decodes only valid items."""

import json

import numpy as np

from eager_llm.data import leave_one_out, load_dataset
from eager_llm.indexing import build_item_index
from eager_llm.tiger import CodeVocabulary, TigerConfig, tiger_rankings, train
from tests.eager_llm.training.toy import write_dataset

SMALL = TigerConfig(d_model=32, d_ff=64, layers=1, heads=2, d_kv=16, epochs=3, batch_size=8,
                    warmup_steps=2)  # fmt: skip


def toy(tmp_path):
    interactions, _ = load_dataset(write_dataset(tmp_path / "data"), k_core=1)
    item_ids = interactions.item_ids.tolist()
    codes = np.array([[i // 4, i % 4] for i in range(len(item_ids))])
    return leave_one_out(interactions, max_history=20), build_item_index(item_ids, codes), item_ids


def test_vocabulary_and_prefix_constraints(tmp_path):
    _, item_index, item_ids = toy(tmp_path)
    vocabulary = CodeVocabulary(item_index, item_ids)
    assert vocabulary.length == 2
    first = vocabulary.allowed([])
    assert len(first) == 3  # values 0, 1, 2 at level 0 for 10 items
    second = vocabulary.allowed([first[2]])
    assert len(second) == 2  # items 8 and 9 only
    assert vocabulary.encode([0, 1], 20) == [*vocabulary.codes[0], *vocabulary.codes[1], 1]


def test_tiger_trains_and_ranks_only_valid_distinct_items(tmp_path):
    split, item_index, item_ids = toy(tmp_path)
    summary = train(split, item_index, item_ids, SMALL, split.valid, tmp_path / "tiger",
                    progress=lambda line: None)  # fmt: skip
    assert [p["epoch"] for p in summary["curve"]] == [1, 2, 3]
    assert summary["curve"][-1]["loss"] < summary["curve"][0]["loss"]
    saved = json.loads((tmp_path / "tiger" / "tiger.json").read_text())
    assert saved["best_epoch"] == summary["best_epoch"]
    histories = [list(e.history) for e in split.test]
    ranked = tiger_rankings(tmp_path / "tiger", item_ids, histories, k=5)
    assert len(ranked) == len(histories)
    for items in ranked:
        assert len(items) == 5 and len(set(items)) == 5
        assert all(0 <= i < len(item_ids) for i in items)
