"""Per-level ranks of a target under its true prefix, on hand-made tries and scores."""

import numpy as np
import pytest

from eager_llm.decoding import ItemTrie
from eager_llm.level_ranks import (
    LevelRank,
    allowed_by_level,
    model_ranks,
    prior_ranks,
    subtree_counts,
    survival,
    target_rank,
    top_k,
)

EOS = 0
IDS = {"<a_0>": 1, "<a_1>": 2, "<a_2>": 3, "<b_0>": 4, "<b_1>": 5}
INDEX = {  # a_0 holds x and y; a_1 and a_2 one item each
    "x": ["<a_0>", "<b_0>"],
    "y": ["<a_0>", "<b_1>"],
    "z": ["<a_1>", "<b_0>"],
    "w": ["<a_2>", "<b_0>"],
}


class Tokenizer:
    """The part of a tokenizer ItemTrie reads: every index token is one id, EOS is 0."""

    eos_token_id = EOS
    unk_token_id = 99

    def encode(self, token, add_special_tokens=False):
        return [IDS[token]]


@pytest.fixture
def trie():
    return ItemTrie(INDEX, Tokenizer())


def test_top_k_is_the_chance_of_the_first_k_under_random_tie_order():
    clear = LevelRank(allowed=5, above=2, tied=0)
    assert [clear.top(k) for k in (1, 2, 3, 5)] == [0.0, 0.0, 1.0, 1.0]
    tied = LevelRank(allowed=6, above=1, tied=3)  # places 2-5 shared by the target and 3 others
    assert [tied.top(k) for k in (1, 2, 3, 4, 5, 6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def test_target_rank_counts_only_allowed_tokens():
    scores = np.array([9.0, -1.0, 0.5, 3.0, 0.5, 7.0])  # token 0 and 5 are not allowed
    assert target_rank(scores, [1, 2, 3, 4], 2) == LevelRank(4, 1, 1)
    assert target_rank(scores, [1, 2, 3, 4], 3) == LevelRank(4, 0, 0)
    assert target_rank(scores, [1, 2, 3, 4], 1) == LevelRank(4, 3, 0)
    with pytest.raises(ValueError, match="not among"):
        target_rank(scores, [1, 2], 5)
    with pytest.raises(ValueError, match="twice"):
        target_rank(scores, [1, 1, 2], 2)
    with pytest.raises(ValueError, match="NaN"):
        target_rank(np.array([0.0, np.nan, 1.0]), [1, 2], 2)


def test_allowed_tokens_follow_the_true_prefix_and_drop_pruned_nodes(trie):
    assert [sorted(level) for level in allowed_by_level(trie, "y")] == [[1, 2, 3], [4, 5], [EOS]]
    assert [sorted(level) for level in allowed_by_level(trie, "z")] == [[1, 2, 3], [4], [EOS]]
    without_x = frozenset(trie.exhausted_nodes(["x"]))
    assert [sorted(level) for level in allowed_by_level(trie, "y", without_x)] == [
        [1, 2, 3], [5], [EOS]
    ]  # fmt: skip
    without_xy = frozenset(trie.exhausted_nodes(["x", "y"]))
    assert sorted(allowed_by_level(trie, "z", without_xy)[0]) == [2, 3]


def test_subtree_counts_sum_the_items_below_each_node(trie):
    counts = subtree_counts(trie, {"x": 5, "y": 1, "z": 3, "w": 4})
    assert counts[0] == 13
    node = {token: trie.walk([IDS[token]]) for token in ("<a_0>", "<a_1>", "<a_2>")}
    assert [counts[node[t]] for t in ("<a_0>", "<a_1>", "<a_2>")] == [6, 3, 4]
    assert counts[trie.walk([1, 5])] == 1 and counts[trie.walk([1, 5, EOS])] == 1


def test_popularity_prior_ranks_on_a_known_catalogue(trie):
    counts = subtree_counts(trie, {"x": 5, "y": 1, "z": 3, "w": 4})
    # y: a_0 (6) is the most popular first token; under a_0, b_1 (y: 1) trails b_0 (x: 5)
    assert prior_ranks(trie, counts, "y") == [LevelRank(3, 0, 0), LevelRank(2, 1, 0),
                                              LevelRank(1, 0, 0)]  # fmt: skip
    # z: a_1 (3) trails a_0 (6) and a_2 (4); its only sibling level is forced
    assert prior_ranks(trie, counts, "z") == [LevelRank(3, 2, 0), LevelRank(1, 0, 0),
                                              LevelRank(1, 0, 0)]  # fmt: skip
    tied = subtree_counts(trie, {"x": 5, "y": 1, "z": 3, "w": 3})
    assert prior_ranks(trie, tied, "z")[0] == LevelRank(3, 1, 1)
    # x and y seen and pruned: z competes with w alone at the first level
    pruned = frozenset(trie.exhausted_nodes(["x", "y"]))
    assert prior_ranks(trie, counts, "z", pruned)[0] == LevelRank(2, 1, 0)


def test_model_ranks_read_one_row_per_level(trie):
    log_probs = np.full((3, 6), -10.0)
    log_probs[0, [1, 2, 3]] = [-0.5, -2.0, -1.0]  # level 1: a_0 best, a_1 last
    log_probs[1, [4, 5]] = [-3.0, -0.1]  # level 2: under the true prefix
    log_probs[2, EOS] = -0.01
    assert model_ranks(trie, log_probs, "z") == [LevelRank(3, 2, 0), LevelRank(1, 0, 0),
                                                 LevelRank(1, 0, 0)]  # fmt: skip
    assert model_ranks(trie, log_probs, "y") == [LevelRank(3, 0, 0), LevelRank(2, 0, 0),
                                                 LevelRank(1, 0, 0)]  # fmt: skip
    assert model_ranks(trie, log_probs, "x")[1] == LevelRank(2, 1, 0)
    with pytest.raises(ValueError, match="2 rows of scores for 3 levels"):
        model_ranks(trie, log_probs[:2], "x")


def test_survival_is_the_running_product_of_the_levels():
    users = [
        [LevelRank(5, 0, 0), LevelRank(4, 1, 1), LevelRank(1, 0, 0)],  # level 2: a coin flip
        [LevelRank(5, 3, 0), LevelRank(4, 0, 0), LevelRank(1, 0, 0)],  # lost at level 1
        [LevelRank(5, 0, 0), LevelRank(1, 0, 0)],  # a shorter code: its missing level is 1
    ]
    assert top_k(users, 2).tolist() == [[1, 0.5, 1], [0, 1, 1], [1, 1, 1]]
    assert survival(users, 2).tolist() == [[1, 0.5, 0.5], [0, 0, 0], [1, 1, 1]]
    assert survival(users, 4)[:, -1].tolist() == [1, 1, 1]
