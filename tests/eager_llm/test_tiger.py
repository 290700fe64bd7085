"""TIGER baseline: a T5 from scratch on a toy catalogue trains and decodes only valid items."""

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import T5ForConditionalGeneration

from eager_llm import tiger
from eager_llm.data import leave_one_out, load_dataset
from eager_llm.indexing import build_item_index
from eager_llm.tiger import (
    STATE,
    CodeTrieProcessor,
    CodeVocabulary,
    TigerConfig,
    tiger_rankings,
    train,
)
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


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("tiger")
    split, item_index, item_ids = toy(tmp_path)
    train(split, item_index, item_ids, SMALL, split.valid, tmp_path / "tiger",
          progress=lambda line: None)  # fmt: skip
    histories = [list(e.history) for e in split.test]
    return SimpleNamespace(folder=tmp_path / "tiger", item_ids=item_ids, histories=histories)


def _rank(trained, k, **options):
    return tiger_rankings(trained.folder, trained.item_ids, trained.histories, k, **options)


def test_removed_items_never_come_out_and_k_items_still_do(trained):
    # items 0..3 share the first code: the user has seen three of them and its history
    exclude = [{0, 1, 2, *history} for history in trained.histories]
    kept, removed = _rank(trained, 5), _rank(trained, 5, exclude=exclude)
    assert any(set(items) & seen for items, seen in zip(kept, exclude, strict=True))
    for items, seen in zip(removed, exclude, strict=True):
        assert len(items) == min(5, 10 - len(seen)) == len(set(items))
        assert not set(items) & seen


def test_exhaustive_removal_is_keep_then_drop_the_seen_items(trained):
    # 10 beams over 10 items: no beam is ever cut, both searches rank exactly
    exclude = [{0, 1, 2, 9}] * len(trained.histories)
    everything, removed = _rank(trained, 10), _rank(trained, 10, exclude=exclude)
    for full, items, seen in zip(everything, removed, exclude, strict=True):
        assert items == [item for item in full if item not in seen]


def test_fewer_unseen_items_than_k_returns_all_of_them(trained):
    exclude = [set(range(10)) - {3, 8}] * len(trained.histories)
    assert all(sorted(items) == [3, 8] for items in _rank(trained, 5, exclude=exclude))


def test_allowed_beam_scores_renormalise_over_the_allowed_codes(tmp_path):
    _, item_index, item_ids = toy(tmp_path)
    vocabulary = CodeVocabulary(item_index, item_ids)
    log_probs = torch.randn(2, vocabulary.size, generator=torch.Generator().manual_seed(0))
    log_probs = log_probs.log_softmax(-1)
    decoded = torch.tensor([[0], [0]])  # the decoder start: first codes next
    first = vocabulary.allowed([])
    full = CodeTrieProcessor(vocabulary, 2, None, "vocabulary")(decoded, log_probs)
    allowed = CodeTrieProcessor(vocabulary, 2, None, "allowed")(decoded, log_probs)
    assert torch.equal(full[:, first], log_probs[:, first])
    assert allowed[:, first].exp().sum(-1).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    assert torch.allclose(allowed[:, first], log_probs[:, first].log_softmax(-1))
    others = [t for t in range(vocabulary.size) if t not in first]
    assert torch.isinf(allowed[:, others]).all() and torch.isinf(full[:, others]).all()
    # one beam of a user who has seen every item under the first code: that code is gone
    pruned = CodeTrieProcessor(vocabulary, 2, [{0, 1, 2, 3}], "allowed")(decoded, log_probs)
    assert torch.isinf(pruned[:, first[0]]).all()
    assert pruned[:, first[1:]].exp().sum(-1).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)


class Interrupted(Exception):
    pass


def _interrupt_after(epoch: int):
    """A progress callback that stops the run once ``epoch`` is done (checkpoint written)."""

    def progress(line: str) -> None:
        if line.startswith("{") and json.loads(line)["epoch"] == epoch:
            raise Interrupted

    return progress


def _weights(folder) -> dict:
    return T5ForConditionalGeneration.from_pretrained(folder).state_dict()


def _without_seconds(curve):
    return [{k: v for k, v in point.items() if k != "seconds"} for point in curve]


def test_an_interrupted_run_resumes_exactly_as_it_would_have_run(tmp_path):
    split, item_index, item_ids = toy(tmp_path)
    config = replace(SMALL, epochs=4, patience=10)
    args = (split, item_index, item_ids, config, split.valid)
    whole = train(*args, tmp_path / "whole", progress=lambda line: None)
    with pytest.raises(Interrupted):
        train(*args, tmp_path / "cut", progress=_interrupt_after(2))
    assert not (tmp_path / "cut" / STATE).exists()
    lines = []
    resumed = train(*args, tmp_path / "cut", progress=lines.append, resume=True)
    assert lines[0] == "resumed after epoch 2" and len(lines) == 3  # epochs 3 and 4
    assert _without_seconds(resumed["curve"]) == _without_seconds(whole["curve"])
    for name, weight in _weights(tmp_path / "whole").items():
        assert torch.equal(_weights(tmp_path / "cut")[name], weight), name
    again = []  # a finished run resumed trains nothing and keeps its model
    assert (
        train(*args, tmp_path / "cut", progress=again.append, resume=True)["curve"]
        == (resumed["curve"])
    )
    assert again == ["resumed after epoch 4"]


def test_training_stops_when_validation_has_not_improved_for_patience_epochs(tmp_path, monkeypatch):
    scripted = iter([0.1, 0.3, 0.2, 0.3, 0.25, 0.9])  # best at epoch 2; epoch 4 only ties it
    monkeypatch.setattr(
        tiger, "evaluate_rankings", lambda *a, **k: {"recall@10": next(scripted), "ndcg@10": 0}
    )
    split, item_index, item_ids = toy(tmp_path)
    config = replace(SMALL, epochs=6, patience=3)
    summary = train(split, item_index, item_ids, config, split.valid, tmp_path / "t",
                    progress=lambda line: None)  # fmt: skip
    assert [p["epoch"] for p in summary["curve"]] == [1, 2, 3, 4, 5]
    assert summary["best_epoch"] == 2 and summary["stopped"] == "patience"


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    split, item_index, item_ids = toy(tmp_path)
    args = (split, item_index, item_ids)
    with pytest.raises(Interrupted):
        train(*args, SMALL, split.valid, tmp_path / "t", progress=_interrupt_after(1))
    with pytest.raises(ValueError, match=r"other settings \(d_model 32 -> 16\)"):
        train(*args, replace(SMALL, d_model=16), split.valid, tmp_path / "t", resume=True)
    longer = replace(SMALL, epochs=5, patience=10)  # more epochs, another patience: taken
    assert len(train(*args, longer, split.valid, tmp_path / "t", progress=lambda line: None,
                     resume=True)["curve"]) == 5  # fmt: skip
