"""RecBole 1.2.1 and the project agree on a tiny synthetic split: the Recall/NDCG formulas,
the split written as atomic files (same users, targets and histories), and seen-item removal
in full-sort evaluation (RecBole's masking vs ``seen="remove"`` on the same scores).
Uses experiments/recbole_agreement.py's bridge (RecBole's missing logging-only imports get
no-op stand-ins there)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from eager_llm.baselines import target_ranks
from eager_llm.metrics import per_user_from_ranks

pytest.importorskip("recbole")
SCRIPT = Path(__file__).parents[2] / "experiments" / "recbole_agreement.py"


@pytest.fixture(scope="module")
def bridge():
    """The script as a module; NumPy's module dict and autograd's anomaly mode are restored
    afterwards (RecBole's Config adds NumPy 1 aliases such as ``np.float``; importing its
    models turns anomaly detection on for the whole process, in ``sine.py``)."""
    before = dict(np.__dict__)
    anomaly = torch.is_anomaly_enabled()
    spec = importlib.util.spec_from_file_location("recbole_agreement", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.recbole_stand_ins()
    yield module
    for name in set(np.__dict__) - set(before):
        delattr(np, name)
    torch.autograd.set_detect_anomaly(anomaly)
    sys.modules.pop("recbole_agreement", None)


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """30 users, 20 items: each user's whole sequence (all items appear)."""
    rng = np.random.default_rng(0)
    sequences = [rng.permutation(20)[: rng.integers(5, 12)].tolist() for _ in range(30)]
    sequences[0], sequences[1] = list(range(18)), [18, 19, 0, 1, 2]  # every item appears
    return sequences, tmp_path_factory.mktemp("recbole")


def test_recall_and_ndcg_formulas_match_recboles(bridge):
    from recbole.evaluator.metrics import NDCG, Recall

    rng = np.random.default_rng(1)
    ranks = rng.integers(0, 15, size=200).astype(np.float64)  # 0-based; >= k: a miss
    pos_index = np.arange(10)[None, :] == ranks[:, None]  # (users, top 10), one relevant item
    pos_len = np.ones(len(ranks), dtype=np.int64)
    config = {"topk": [10], "metric_decimal_place": 10}
    recall = Recall(config).metric_info(pos_index, pos_len)
    ndcg = NDCG(config).metric_info(pos_index, pos_len)
    for k in (1, 5, 10):
        ours_recall, ours_ndcg = per_user_from_ranks(ranks, k)
        np.testing.assert_allclose(recall[:, k - 1], ours_recall, rtol=0, atol=1e-12)
        np.testing.assert_allclose(ndcg[:, k - 1], ours_ndcg, rtol=1e-12, atol=1e-12)


def run_recbole(bridge, split, model: str, max_len: int = 5):
    sequences, folder = split
    data = bridge.write_atomic([np.array(s) for s in sequences], folder / "data")
    config = bridge.recbole_config(data.parent, model, max_len=max_len, dim=8, epochs=1)
    config["topk"] = [5, 10]
    with bridge.inside(folder / model):
        recbole_model, dataset, test_data, trainer, _ = bridge.recbole_run(config, train=False)
        own = trainer.evaluate(test_data, load_best_model=False)
    users, targets, scores = bridge.recbole_scores(recbole_model, dataset, test_data)
    order = np.argsort(users)
    return own, users[order], targets[order], scores[order]


def test_sequential_full_sort_is_our_keep_protocol_on_the_same_split(bridge, split):
    """An untrained RecBole SASRec: its test users, targets and evaluator match ours on its
    scores with history items kept (RecBole masks nothing for sequential models)."""
    torch.manual_seed(0)
    sequences, _ = split
    own, users, targets, scores = run_recbole(bridge, split, "SASRec")
    assert users.tolist() == list(range(30))
    assert targets.tolist() == [s[-1] for s in sequences]
    histories = [s[:-1] for s in sequences]
    ranks = target_ranks(scores, targets, histories, "keep")
    for k in (5, 10):
        recall, ndcg = per_user_from_ranks(ranks, k)
        assert own[f"recall@{k}"] == pytest.approx(recall.mean(), abs=1e-9)
        assert own[f"ndcg@{k}"] == pytest.approx(ndcg.mean(), abs=1e-9)


def test_general_full_sort_removes_the_past_as_seen_remove(bridge, split):
    """An untrained RecBole BPR: RecBole's full sort masks the user's training and
    validation items; ours with ``seen="remove"`` and the whole past gives the same
    metrics on the same scores, and keeping them gives others."""
    torch.manual_seed(0)
    sequences, _ = split
    own, users, targets, scores = run_recbole(bridge, split, "BPR")
    assert targets.tolist() == [s[-1] for s in sequences]
    histories = [s[:-1] for s in sequences]
    removed = target_ranks(scores, targets, histories, "remove")
    kept = target_ranks(scores, targets, histories, "keep")
    assert (removed <= kept).all() and (removed < kept).any()
    for k in (5, 10):
        recall, ndcg = per_user_from_ranks(removed, k)
        assert own[f"recall@{k}"] == pytest.approx(recall.mean(), abs=1e-9)
        assert own[f"ndcg@{k}"] == pytest.approx(ndcg.mean(), abs=1e-9)
