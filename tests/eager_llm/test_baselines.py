"""The non-LLM baselines (:mod:`eager_llm.baselines`): seen-item handling and toy catalogues
whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eager_llm.baselines import (
    SEEN,
    CETrainConfig,
    ItemKNNConfig,
    MarkovConfig,
    item_similarity,
    itemknn_rankings,
    markov_rankings,
    markov_scores,
    most_popular,
    sasrec_rankings,
    sasrec_scores,
    target_ranks,
    top_k,
    train_sasrec_ce,
    transition_counts,
)
from eager_llm.encoders import SASRec, SASRecConfig
from tests.eager_llm.interrupt import dies_on_call

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


def test_target_ranks_are_positions_in_the_top_k_lists():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(20, 15)).astype(float)  # many ties
    tie = rng.integers(0, 3, size=15)
    histories = [rng.choice(15, size=rng.integers(0, 8), replace=False).tolist() for _ in range(20)]
    targets = [rng.choice([i for i in range(15) if i not in h]) for h in histories]
    for seen in SEEN:
        lists = top_k(scores, 15, histories, seen, tiebreak=tie)
        ranks = target_ranks(scores, targets, histories, seen, tiebreak=tie)
        assert ranks.tolist() == [items.index(t) for items, t in zip(lists, targets, strict=True)]
        for row, items in enumerate(lists):  # ties: larger tiebreak, then lower index
            keys = [(-scores[row, i], -tie[i], i) for i in items]
            assert keys == sorted(keys)


def test_target_ranks_mark_a_removed_target():
    assert target_ranks(np.ones((1, 3)), [1], [[1]], seen="remove").tolist() == [-1]


CHAIN = [np.arange(start, start + 6) % 8 for start in range(8)]  # item i is followed by i + 1


def test_markov_follows_a_deterministic_successor_chain():
    counts = transition_counts(CHAIN, 8)
    assert counts.sum() == 8 * 5 and set(np.unique(counts)) == {0.0, 5.0}
    assert all(counts[i, (i + 1) % 8] == 5 for i in range(8))
    histories = [[3, 4], [7], [0, 5, 2]]
    ranked = markov_rankings(CHAIN, histories, 1, n_items=8, config=MarkovConfig(last=1))
    assert ranked == [[5], [0], [3]]


def test_markov_weights_recent_items_by_decay_and_window_counts_later_items():
    train = [np.array([0, 1]), np.array([2, 3]), np.array([2, 3]), np.array([0, 4, 5])]
    counts = transition_counts(train, 6)
    config = MarkovConfig(last=2, decay=0.5)
    scores = markov_scores(counts, [[0, 2]], config)[0]
    assert scores.tolist() == [0, 0.5, 0, 2.0, 0.5, 0]  # 3 after 2 twice; 1, 4 after 0
    window = transition_counts(train, 6, window=2)
    assert window[0, 5] == 1 and counts[0, 5] == 0
    normalised = markov_scores(counts, [[0]], MarkovConfig(last=1, normalise=True))[0]
    assert normalised.tolist() == [0, 0.5, 0, 0, 0.5, 0]
    assert markov_rankings(train, [[0, 2]], 3, n_items=6, config=config) == [[3, 1, 4]]


def test_itemknn_recommends_the_identical_neighbour():
    # items 0 and 1 are bought by the same users, as are 2 and 3; item 4 by everyone
    train = [np.array(items) for items in ([0, 1, 4], [0, 1, 4], [2, 3, 4], [2, 3, 4], [0, 1])]
    similarity = item_similarity(train, 5, ItemKNNConfig(neighbours=None))
    assert similarity[0, 1] == pytest.approx(1.0) and similarity[2, 3] == pytest.approx(1.0)
    assert similarity[0, 2] == 0 and np.diag(similarity).tolist() == [0.0] * 5
    assert similarity[0, 4] == pytest.approx(2 / np.sqrt(3 * 4))
    shrunk = item_similarity(train, 5, ItemKNNConfig(neighbours=None, shrink=2.0))
    assert shrunk[0, 1] == pytest.approx(3 / (3 + 2))
    ranked = itemknn_rankings(train, [[0], [3], [4]], 2, n_items=5, config=ItemKNNConfig())
    assert ranked[0] == [1, 4] and ranked[1] == [2, 4]
    assert ranked[2][0] in (0, 1, 2, 3)
    top1 = item_similarity(train, 5, ItemKNNConfig(neighbours=1))
    assert (top1 > 0).sum(1).tolist() == [1] * 5 and top1[0, 1] == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["popular", "markov", "itemknn"])
def test_seen_remove_never_returns_a_history_item_and_keeps_k(method):
    rng = np.random.default_rng(1)
    n_items, k = 30, 10
    train = [rng.choice(n_items, size=rng.integers(3, 12), replace=False) for _ in range(40)]
    histories = [rng.choice(n_items, size=rng.integers(1, 20), replace=False).tolist()
                 for _ in range(25)]  # fmt: skip
    rank = {
        "popular": lambda seen: most_popular(
            train, n_items, len(histories), k, histories=histories, seen=seen
        ),
        "markov": lambda seen: markov_rankings(train, histories, k, n_items=n_items, seen=seen),
        "itemknn": lambda seen: itemknn_rankings(train, histories, k, n_items=n_items, seen=seen),
    }[method]
    kept, removed = rank("keep"), rank("remove")
    assert all(len(items) == k for items in kept + removed)
    assert any(set(h) & set(items) for h, items in zip(histories, kept, strict=True))
    for history, items in zip(histories, removed, strict=True):
        assert not set(history) & set(items) and len(set(items)) == k


@pytest.mark.parametrize("windows", ["disjoint", "every-prefix"])
def test_sasrec_ce_learns_a_successor_chain_and_keeps_each_protocols_best(windows):
    torch.manual_seed(0)
    train = [np.array([(start + j) % 8 for j in range(8)]) for start in range(8)] * 4
    histories = [[(start + j) % 8 for j in range(4)] for start in range(8)]
    targets = [(start + 4) % 8 for start in range(8)]
    models, report = train_sasrec_ce(
        train, histories, targets, 8, SASRecConfig(dim=16, max_len=5, dropout=0.0),
        CETrainConfig(lr=1e-2, epochs=40, patience=3, batch_size=8, windows=windows),
    )  # fmt: skip
    assert set(models) == set(SEEN) and len(report["history"]) < 40  # stopped early
    for seen, model in models.items():
        assert report["best"][seen]["epoch"] >= 1
        assert sasrec_scores(model, histories).argmax(1).tolist() == targets
        ranked = top_k(sasrec_scores(model, histories), 1, histories, seen)
        assert [items[0] for items in ranked] == targets


def test_sasrec_ce_time_box_stops_after_the_epoch_that_passes_it():
    train = [np.arange(6) % 5 for _ in range(4)]
    _, report = train_sasrec_ce(
        train, [[0, 1]], [2], 5, SASRecConfig(dim=8, max_len=4),
        CETrainConfig(epochs=5, patience=5, max_seconds=0.0),
    )  # fmt: skip
    assert len(report["history"]) == 1 and report["stopped"] == "time"


def test_load_split_and_trained_sasrec_points_keep_their_tie_order(tmp_path):
    import json

    from eager_llm.baselines.tuning import SASRecPoint, load_split, train_sasrec_point

    with pytest.raises(ValueError, match="tie_order must be 'file' or 'reversed'"):
        load_split("movielens-100k", "test", tie_order="random")
    point = SASRecPoint(max_len=5, dim=8, dropout=0.0, lr=1e-3)
    done = tmp_path / point.name / "report.json"
    done.parent.mkdir()
    done.write_text(json.dumps({"best": {}}))  # written before tie orders: the file order
    assert train_sasrec_point([], None, point, tmp_path) == {"best": {}}
    with pytest.raises(ValueError, match="trained on the 'file' tie order, not 'reversed'"):
        train_sasrec_point([], None, point, tmp_path, tie_order="reversed")


def test_the_sasrec_grid_has_every_prefix_rows_as_a_factor_in_its_own_folders():
    from eager_llm.baselines.tuning import SASRecPoint, sasrec_grid

    grid = sasrec_grid([50])
    assert len({point.name for point in grid}) == len(grid)  # one folder per point
    [every] = [point for point in grid if point.windows == "every-prefix"]
    assert every.name == "len50-d64-drop0.5-lr0.001-every-prefix"
    assert SASRecPoint(50, 64, 0.5, 1e-3).name == "len50-d64-drop0.5-lr0.001"  # as before
    assert every.configs()[1].windows == "every-prefix"


def test_sasrec_ce_killed_in_an_epoch_goes_on_from_its_checkpoint_bit_for_bit(
    tmp_path, monkeypatch
):
    import eager_llm.baselines.sasrec as sasrec

    train = [np.array([(start + j) % 8 for j in range(8)]) for start in range(8)] * 2
    histories = [[(start + j) % 8 for j in range(4)] for start in range(8)]
    targets = [(start + 4) % 8 for start in range(8)]
    args = (train, histories, targets, 8, SASRecConfig(dim=16, max_len=5, dropout=0.3),
            CETrainConfig(epochs=4, patience=10, batch_size=8))  # fmt: skip
    reference, expected = train_sasrec_ce(*args)
    measured = sasrec.validation_metrics
    monkeypatch.setattr(sasrec, "validation_metrics", dies_on_call(measured, 3))  # epoch 3
    with pytest.raises(KeyboardInterrupt):
        train_sasrec_ce(*args, checkpoint=tmp_path / "point.pt")
    monkeypatch.setattr(sasrec, "validation_metrics", measured)
    models, report = train_sasrec_ce(*args, checkpoint=tmp_path / "point.pt")
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in report["history"]] == [
        {k: v for k, v in r.items() if k not in drop} for r in expected["history"]
    ]
    for seen in SEEN:
        got, want = models[seen].state_dict(), reference[seen].state_dict()
        assert all(torch.equal(got[name], want[name]) for name in want), seen
