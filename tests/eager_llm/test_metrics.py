import math

import numpy as np
import pytest
import torch

from eager_llm.metrics import (
    evaluate_rankings,
    hit_at_k,
    metrics_from_ranks,
    ndcg_at_k,
    per_user_from_ranks,
    per_user_ndcg,
    per_user_recall,
    recall_at_k,
    score_ranks,
    target_rank,
)

RANKED = [["a", "b", "c"], ["c", "a"], ["x"]]
TARGETS = ["b", "a", "y"]  # ranks 2, 2, absent


def test_hand_computed_means():
    assert recall_at_k(RANKED, TARGETS, 1) == 0.0
    assert recall_at_k(RANKED, TARGETS, 2) == pytest.approx(2 / 3)
    assert ndcg_at_k(RANKED, TARGETS, 1) == 0.0
    assert ndcg_at_k(RANKED, TARGETS, 2) == pytest.approx(2 / math.log2(3) / 3)


def test_per_user_values():
    assert per_user_recall(RANKED, TARGETS, 2).tolist() == [1.0, 1.0, 0.0]
    assert per_user_ndcg([["t"], ["u", "t"]], ["t", "t"], 5).tolist() == pytest.approx(
        [1.0, 1 / math.log2(3)]
    )


def test_target_absent_scores_zero():
    assert recall_at_k([["a", "b"]], ["z"], 10) == 0.0
    assert ndcg_at_k([["a", "b"]], ["z"], 10) == 0.0


def test_duplicates_count_once():
    # "a" twice does not push "b" to position 3.
    assert target_rank(["a", "a", "b"], "b") == 2
    assert recall_at_k([["a", "a", "b"]], ["b"], 2) == 1.0
    assert ndcg_at_k([["a", "a", "b"]], ["b"], 2) == pytest.approx(1 / math.log2(3))
    assert target_rank(["b", "b"], "b") == 1


def test_k_larger_than_list_and_empty_lists():
    assert recall_at_k([["a", "b"]], ["b"], 100) == 1.0
    assert ndcg_at_k([["a", "b"]], ["b"], 100) == pytest.approx(1 / math.log2(3))
    assert recall_at_k([[]], ["b"], 5) == 0.0
    assert ndcg_at_k([[], ["b"]], ["b", "b"], 5) == pytest.approx(0.5)


def test_integer_items():
    assert recall_at_k([[3, 1, 2]], [2], 3) == 1.0
    assert ndcg_at_k([[3, 1, 2]], [2], 3) == pytest.approx(0.5)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="targets"):
        recall_at_k([["a"]], ["a", "b"], 5)
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k([["a"]], ["a"], 0)
    with pytest.raises(ValueError, match="targets"):
        evaluate_rankings([["a"]], [])


def test_evaluate_rankings():
    result = evaluate_rankings(RANKED, TARGETS, ks=(1, 2))
    assert result == {
        "recall@1": 0.0,
        "ndcg@1": 0.0,
        "recall@2": pytest.approx(2 / 3),
        "ndcg@2": pytest.approx(2 / math.log2(3) / 3),
        "n_users": 3,
    }
    assert set(evaluate_rankings(RANKED, TARGETS)) == {
        "recall@5",
        "ndcg@5",
        "recall@10",
        "ndcg@10",
        "n_users",
    }


def test_no_users():
    assert evaluate_rankings([], [])["recall@5"] == 0.0


def test_score_ranks_and_metrics_by_hand():
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1], [0.5, 0.5, 0.0]])
    rank = score_ranks(scores, [2, 0, 1])
    assert rank.tolist() == [1, 0, 0.5]  # tied with one other item: ranks 0 and 1 equally likely
    metrics = metrics_from_ranks(np.array([0, 1, 10]), k=10)
    assert metrics["recall@10"] == pytest.approx(2 / 3)
    assert metrics["ndcg@10"] == pytest.approx((1 + 1 / np.log2(3)) / 3)


def test_a_tied_target_gets_its_expected_rank_not_the_best():
    scores = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 1.0, 1.0, 1.0], [0.0, 3.0, 3.0, 0.0]])
    ranks = score_ranks(scores, [2, 3, 0])
    # all four tied: uniform over ranks 0..3; one above and three tied: 1..3; two above, two tied
    assert ranks.tolist() == [1.5, 2.0, 2.5]
    assert ranks.dtype == np.float64
    recall, _ = per_user_from_ranks(score_ranks(torch.zeros(1, 100), [7]), 10)
    assert recall.tolist() == [0.0]  # a constant model no longer hits every target


def test_metrics_from_ranks_agree_with_ranked_lists():
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(50, 30, generator=generator)  # continuous: no ties
    targets = torch.randint(0, 30, (50,), generator=generator).tolist()
    ranked = scores.argsort(dim=1, descending=True).tolist()
    from_ranks = metrics_from_ranks(score_ranks(scores, targets), k=5)
    assert from_ranks["recall@5"] == pytest.approx(recall_at_k(ranked, targets, 5))
    assert from_ranks["ndcg@5"] == pytest.approx(ndcg_at_k(ranked, targets, 5))


def test_hit_at_k_is_recall_at_k_with_one_held_out_item():
    assert hit_at_k(RANKED, TARGETS, 1) == 0.0
    assert hit_at_k(RANKED, TARGETS, 2) == pytest.approx(2 / 3)
    for k in (1, 2, 3, 20):
        assert hit_at_k(RANKED, TARGETS, k) == recall_at_k(RANKED, TARGETS, k)


def test_evaluate_rankings_adds_hits_after_recall_and_ndcg():
    result = evaluate_rankings(RANKED, TARGETS, ks=(2,), hit_ks=(1, 20))
    assert list(result) == ["recall@2", "ndcg@2", "hit@1", "hit@20", "n_users"]
    assert result["hit@1"] == 0.0 and result["hit@20"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="k must be"):
        evaluate_rankings(RANKED, TARGETS, ks=(5,), hit_ks=(0,))
