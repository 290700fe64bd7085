"""Per-level ranks of a target item under a correct prefix: where trie beam search loses it.

Beam search over an :class:`~eager_llm.decoding.ItemTrie` picks one code token per level.
Given the target item's true prefix (teacher forcing), each level is a choice among the
tokens the trie allows after that prefix; this module ranks the target's token among them
by any per-token score (the model's log-probabilities, or a popularity prior: the number of
training interactions of the items below each child) and turns the ranks into top-k
accuracies per level and into the share of targets that survive levels ``1..L``.

Ties (bf16 logits tie often; popularity counts tie on small subtrees) are broken uniformly at
random: :meth:`LevelRank.top` is the probability that the target is among the first ``k``.
Survival multiplies those probabilities over the levels (independent tie draws).

A target whose token is not among the first ``k`` siblings at some level cannot come out of
a ``k``-beam search whose candidates at that level are all unfinished prefixes (every level
but the terminator's, in an index of equal-length codes): the ``k`` siblings above it share
its parent's score and beat it. So survival through every level bounds, from above, the
Recall@k of a ``k``-beam search with the same scores; it is no lower bound (a surviving
target can still lose to other prefixes' candidates).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from eager_llm.decoding import ItemTrie


@dataclass(frozen=True)
class LevelRank:
    """The target's place among the ``allowed`` tokens of one level: ``above`` allowed tokens
    score strictly higher, ``tied`` other allowed tokens score the same."""

    allowed: int
    above: int
    tied: int

    def top(self, k: int) -> float:
        """Probability that the target is among the first ``k`` under a uniformly random
        order of the tied tokens."""
        return float(min(1.0, max(0.0, (k - self.above) / (self.tied + 1))))


def target_rank(
    scores: Sequence[float] | np.ndarray, allowed: Sequence[int], target: int
) -> LevelRank:
    """Rank of token ``target`` among the token ids ``allowed`` by ``scores`` (indexed by token
    id, higher is better; NaN is not allowed). Raises ``ValueError`` when ``target`` is not
    allowed or a token is allowed twice."""
    allowed = [int(token) for token in allowed]
    if len(set(allowed)) != len(allowed):
        raise ValueError(f"a token is allowed twice: {allowed}")
    if target not in allowed:
        raise ValueError(f"target token {target} is not among the allowed tokens {allowed}")
    return rank_of(np.asarray(scores, dtype=np.float64)[allowed], allowed.index(target))


def rank_of(values: np.ndarray, position: int) -> LevelRank:
    """The rank of entry ``position`` among ``values`` (the allowed tokens' scores, 1-d)."""
    values = np.asarray(values, dtype=np.float64)
    if np.isnan(values).any():
        raise ValueError("NaN score among the allowed tokens")
    own = values[position]
    return LevelRank(len(values), int((values > own).sum()), int((values == own).sum()) - 1)


def child_nodes(trie: ItemTrie, node: int) -> dict[int, int]:
    """Token id -> child node of ``node``."""
    start, count = int(trie.child_start[node]), int(trie.child_count[node])
    tokens = trie.child_token[start : start + count].tolist()
    return dict(zip(tokens, trie.child_node[start : start + count].tolist(), strict=True))


def item_path(trie: ItemTrie, item: Hashable) -> list[int]:
    """The nodes from the root (included) to ``item``'s leaf (excluded): the node before each
    token of ``trie.sequences[item]`` (code tokens, then the terminator)."""
    nodes = [0]
    for token in trie.sequences[item][:-1]:
        nodes.append(child_nodes(trie, nodes[-1])[token])
    return nodes


def allowed_by_level(
    trie: ItemTrie, item: Hashable, pruned: frozenset[int] = frozenset()
) -> list[dict[int, int]]:
    """Per level of ``item``'s token sequence (code tokens, then the terminator), the tokens
    the trie allows after the true prefix, as token -> child node, without the children in
    ``pruned`` (nodes whose every item is excluded, :meth:`ItemTrie.exhausted_nodes`)."""
    levels = []
    for node in item_path(trie, item):
        children = child_nodes(trie, node)
        levels.append({t: c for t, c in children.items() if c not in pruned})
    return levels


def subtree_counts(trie: ItemTrie, counts: Mapping[Hashable, float]) -> np.ndarray:
    """Per node, the sum of ``counts`` (item -> count; missing items count 0) of the items
    below it (a leaf: its item's): float array (trie.n_nodes,)."""
    total = np.zeros(trie.n_nodes)
    for item in trie.items:
        count = counts.get(item, 0)
        if count:
            path = item_path(trie, item)
            leaf = child_nodes(trie, path[-1])[trie.terminator]
            total[[*path, leaf]] += count
    return total


def prior_ranks(
    trie: ItemTrie, node_scores: np.ndarray, item: Hashable, pruned: frozenset[int] = frozenset()
) -> list[LevelRank]:
    """Per level, ``item``'s rank among the allowed children of its true prefix by
    ``node_scores`` (per child node, e.g. :func:`subtree_counts`): a prior that ignores the
    user."""
    ranks = []
    for token, allowed in zip(
        trie.sequences[item], allowed_by_level(trie, item, pruned), strict=True
    ):
        tokens = list(allowed)
        values = np.array([node_scores[allowed[t]] for t in tokens])
        ranks.append(rank_of(values, tokens.index(token)))
    return ranks


def model_ranks(
    trie: ItemTrie,
    log_probs: np.ndarray,
    item: Hashable,
    pruned: frozenset[int] = frozenset(),
) -> list[LevelRank]:
    """Per level, ``item``'s rank among the allowed tokens of its true prefix by
    ``log_probs``: (levels, vocab), row ``L`` the scores of the token at level ``L`` given the
    prompt and the true prefix (a teacher-forced forward pass)."""
    sequence = trie.sequences[item]
    levels = allowed_by_level(trie, item, pruned)
    if len(log_probs) != len(sequence):
        raise ValueError(f"{len(log_probs)} rows of scores for {len(sequence)} levels")
    return [
        target_rank(row, list(allowed), token)
        for row, allowed, token in zip(log_probs, levels, sequence, strict=True)
    ]


def top_k(ranks: Sequence[Sequence[LevelRank]], k: int) -> np.ndarray:
    """(users, levels): probability that each user's target is in the top ``k`` at each level
    (users with fewer levels padded with 1: a level an item does not have loses nothing)."""
    width = max((len(user) for user in ranks), default=0)
    out = np.ones((len(ranks), width))
    for row, user in enumerate(ranks):
        out[row, : len(user)] = [rank.top(k) for rank in user]
    return out


def survival(ranks: Sequence[Sequence[LevelRank]], k: int) -> np.ndarray:
    """(users, levels): probability that each user's target is in the top ``k`` at every
    level ``1..L`` (column ``L - 1``): a cumulative product of :func:`top_k`."""
    return np.cumprod(top_k(ranks, k), axis=1)
