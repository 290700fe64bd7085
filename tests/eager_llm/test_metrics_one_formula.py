"""Every ranking metric ends in ``eager_llm.metrics.per_user_from_ranks``: ranked lists, full
score matrices and the SASRec encoder's evaluation give the same numbers."""

import numpy as np
import pytest
import torch

from eager_llm.data import Example
from eager_llm.encoders import SASRec, SASRecConfig, evaluate
from eager_llm.metrics import (
    list_ranks,
    metrics_from_ranks,
    per_user_from_ranks,
    per_user_ndcg,
    per_user_recall,
    score_ranks,
)


def test_ranks_of_ranked_lists_with_absent_and_repeated_items():
    ranked, targets = [["a", "a", "b"], ["x"], []], ["b", "y", "z"]
    ranks = list_ranks(ranked, targets)
    assert ranks.tolist() == [1.0, np.inf, np.inf]
    recall, ndcg = per_user_from_ranks(ranks, 2)
    assert recall.tolist() == [1.0, 0.0, 0.0] == per_user_recall(ranked, targets, 2).tolist()
    assert ndcg.tolist() == pytest.approx([1 / np.log2(3), 0.0, 0.0])
    assert ndcg.tolist() == per_user_ndcg(ranked, targets, 2).tolist()


def test_sasrec_evaluation_is_the_shared_metric():
    torch.manual_seed(0)
    model = SASRec(12, SASRecConfig(dim=8, max_len=5)).eval()
    examples = [
        Example(user=u, history=(u % 12, (u + 3) % 12), target=(u * 5) % 12) for u in range(9)
    ]
    scores = model.score([e.history for e in examples])
    expected = metrics_from_ranks(score_ranks(scores, [e.target for e in examples]), k=3)
    assert evaluate(model, examples, k=3, batch_size=4) == expected
