"""The non-LLM baselines (:mod:`eager_llm.baselines`): seen-item handling and toy catalogues
whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eager_llm.baselines import most_popular, sasrec_rankings, top_k
from eager_llm.encoders import SASRec, SASRecConfig

TRAIN = [np.array([0, 1, 2]), np.array([2, 1]), np.array([2, 3, 1, 2])]  # counts 1, 3, 4, 1, 0


def test_top_k_breaks_ties_by_lower_index_and_removes_history():
    scores = np.array([[1.0, 3.0, 3.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    assert top_k(scores, 3) == [[1, 2, 4], [0, 1, 2]]
    assert top_k(scores, 3, [[2], [0, 0, 3]], seen="remove") == [[1, 4, 0], [1, 2, 4]]
    assert top_k(torch.tensor(scores), 2) == [[1, 2], [0, 1]]
    assert scores[0, 2] == 3.0  # the caller's scores are not masked in place


def test_top_k_remove_returns_fewer_only_when_the_catalogue_runs_out():
    assert top_k(np.zeros((1, 4)), 3, [[0, 1]], seen="remove") == [[2, 3]]


def test_most_popular_remove_skips_each_users_history_and_keeps_k():
    keep = most_popular(TRAIN, 5, n_users=2, k=3)
    assert keep == [[2, 1, 0]] * 2
    histories = [[2, 0], [1]]
    removed = most_popular(TRAIN, 5, n_users=2, k=3, histories=histories, seen="remove")
    assert removed == [[1, 3, 4], [2, 0, 3]]


def test_seen_rejects_unknown_values_and_missing_histories():
    with pytest.raises(ValueError, match="seen must be"):
        most_popular(TRAIN, 5, n_users=1, k=2, seen="mask")
    with pytest.raises(ValueError, match="histories"):
        most_popular(TRAIN, 5, n_users=1, k=2, seen="remove")


def test_sasrec_rankings_remove_never_returns_a_history_item(tmp_path):
    torch.manual_seed(0)
    model = SASRec(12, SASRecConfig(dim=8, max_len=5))
    model.save(tmp_path)
    histories = [[0, 1, 2, 3, 4, 5, 6, 7], [3], [11, 11, 10]]
    keep = sasrec_rankings(tmp_path, histories, 6)
    removed = sasrec_rankings(tmp_path, histories, 6, seen="remove")
    assert [len(items) for items in removed] == [4, 6, 6]  # 12 - 8 items left for user 0
    for history, items in zip(histories, removed, strict=True):
        assert not set(history) & set(items)
    scores = model.score(histories).numpy()
    for row, (history, items) in enumerate(zip(histories, removed, strict=True)):
        expected = [i for i in np.argsort(-scores[row], kind="stable") if i not in history]
        assert items == expected[:6]
    assert keep[1][:6] == np.argsort(-scores[1], kind="stable")[:6].tolist()
