"""Constrained beam search over item indices: every returned sequence is a real item.

An item index is a short list of new vocabulary tokens (``<a_12><b_201><c_7><d_99>``).
:class:`ItemTrie` stores the token-id sequences of all indices, each followed by a
terminator (the tokenizer's EOS id), in a prefix tree. Decoding may only follow edges of
the tree, so every finished hypothesis ends at a leaf, i.e. names one item, and distinct
hypotheses name distinct items (two beams reaching the same leaf would be the same token
sequence, which beam search never holds twice).

Scores are sequence log-probabilities without a length penalty, so indices of different
lengths compete on the same scale and the EOS term prices the end of the index. Each step's
log-softmax runs over one of :data:`BEAM_SCORES`:

- ``vocabulary`` (the default): the full vocabulary, so a score is the model's own
  ``log p(index + EOS | prompt)``; the trie masks candidates without renormalising, and a
  level the trie forces (one allowed token) still adds that token's log-probability.
- ``allowed``: only the tokens the trie allows at the beam's node (after the pruning below),
  a distribution over the candidate items: a forced token adds 0, so only the levels where
  the search has a choice order the items.

**Seen items** (``exclude``: per prompt, items that must never be returned, e.g. the user's
history under the ``seen: remove`` protocol) are removed from that prompt's trie before the
search: a node is pruned when every item below it is excluded (:meth:`ItemTrie.exhausted_nodes`),
and candidates entering a pruned node are dropped. Every node a beam can reach therefore
still leads to an unexcluded item, so no beam is spent on excluded items, the top k are
``min(k, unexcluded items)`` distinct unexcluded items, and the search is exactly beam search
over the trie of the unexcluded items. (Dropping excluded items only once their beams
finish would let them occupy beams on the way and return fewer than k items.) Cost: the
pruned nodes are at most ``len(exclude) * trie.depth`` per prompt, found by walking each
excluded item's path; each step looks its candidates up among them by binary search
(``torch.searchsorted`` in the sorted keys).

Two implementations share the trie:

- :func:`recommend` (the one to use) runs its own beam loop. It encodes each prompt once,
  in one forward pass over the un-expanded batch, and never copies the prompt's KV cache
  per beam: decoding steps use an attention implementation (`model_zoo.prompt_attention`)
  in which all beams of a user read that user's prompt cache in place, while only the
  beams' own decoded tokens (at most ``trie.depth``) live in a per-beam cache that follows
  the beams with ``Cache.reorder_cache``. Each step forwards only the live beams of the
  users whose top-k is not settled yet.
- :func:`recommend_with_generate` is the reference: ``model.generate`` beam search with a
  :class:`TrieLogitsProcessor`. In transformers 5.23 ``generate`` repeats every prompt
  ``num_beams`` times (``_expand_inputs_for_generation``) before the first forward, so the
  prompt is encoded once per beam; with the trie, beams that have no valid continuation
  are padded with sentinel hypotheses (score -1e9 or -inf) that are filtered out here.

Both run the same algorithm (HF's beam search with ``length_penalty=0`` and
``early_stopping=False``: a user is settled once k items are finished and no live beam
scores above the k-th); tests check they return the same items and scores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence

import torch
from transformers import DynamicCache, LogitsProcessor, LogitsProcessorList

from eager_llm.prompt_ids import encode_prompts
from model_zoo.prompt_attention import (
    SHARED_PROMPT_ATTENTION,
    SharedPrompt,
    attention_implementation,
)

# generate() gives beams that are not real hypotheses a score of -1e9 (or -inf).
_HF_SENTINEL_SCORE = -1e8
BEAM_SCORES = ("vocabulary", "allowed")  # what each step's log-softmax normalises over


class ItemTrie:
    """Prefix tree over the token ids of all item indices, each ending with a terminator.

    Built from ``item_index`` (item id -> index tokens) and the tokenizer that holds those
    tokens. Every index token must be exactly one token id, no index may contain the
    terminator, and indices must be unique. An index may be a strict prefix of another
    (e.g. after collision disambiguation with an extra token): the terminator keeps both
    reachable, as ``... <c_7> EOS`` and ``... <c_7> <e_1> EOS``.

    Storage (node 0 is the root; the children of node ``n`` are the edges
    ``child_start[n] : child_start[n] + child_count[n]``):

    - ``child_start``, ``child_count``: LongTensor (n_nodes,)
    - ``child_token``, ``child_node``: LongTensor (n_edges,), the edge's token and target
    - ``leaf_item``: LongTensor (n_nodes,), position in ``items`` of a leaf's item, else -1
    - ``sequences``: item id -> its token ids including the terminator
    - ``n_nodes``; per node the number of items below it, and per item the nodes of its
      path (root excluded, leaf included), for :meth:`exhausted_nodes`
    """

    def __init__(self, item_index: Mapping[Hashable, Sequence[str]], tokenizer) -> None:
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token to terminate item indices")
        self.terminator: int = tokenizer.eos_token_id
        self.items: list[Hashable] = list(item_index)
        self.sequences: dict[Hashable, list[int]] = {}
        self._token_id: dict[str, int] = {}
        children: list[dict[int, int]] = [{}]
        leaf_item = [-1]
        self._items_below = [0]
        self._path: dict[Hashable, list[int]] = {}
        self.depth = 0
        for position, item in enumerate(self.items):
            ids = [*self._token_ids(item, item_index[item], tokenizer), self.terminator]
            self.sequences[item] = ids
            node, path = 0, []
            for token in ids[:-1]:
                if token not in children[node]:
                    children[node][token] = len(children)
                    children.append({})
                    leaf_item.append(-1)
                    self._items_below.append(0)
                node = children[node][token]
                path.append(node)
            if self.terminator in children[node]:
                other = self.items[leaf_item[children[node][self.terminator]]]
                raise ValueError(f"items {other!r} and {item!r} have the same index")
            children[node][self.terminator] = len(children)
            children.append({})
            leaf_item.append(position)
            self._items_below.append(0)
            path.append(len(children) - 1)
            for below in (0, *path):
                self._items_below[below] += 1
            self._path[item] = path
            self.depth = max(self.depth, len(ids))
        self.n_nodes = len(children)

        counts = [len(edges) for edges in children]
        starts = [0]
        for count in counts[:-1]:
            starts.append(starts[-1] + count)
        self.child_start = torch.tensor(starts, dtype=torch.long)
        self.child_count = torch.tensor(counts, dtype=torch.long)
        self.child_token = torch.tensor([t for edges in children for t in edges], dtype=torch.long)
        self.child_node = torch.tensor(
            [n for edges in children for n in edges.values()], dtype=torch.long
        )
        self.leaf_item = torch.tensor(leaf_item, dtype=torch.long)
        self._children = children
        self._leaf_item = leaf_item

    def _token_ids(self, item: Hashable, tokens: Sequence[str], tokenizer) -> list[int]:
        if len(tokens) == 0:
            raise ValueError(f"item {item!r} has an empty index")
        ids = []
        for token in tokens:
            if token not in self._token_id:
                encoded = tokenizer.encode(token, add_special_tokens=False)
                if len(encoded) != 1 or encoded[0] == tokenizer.unk_token_id:
                    raise ValueError(
                        f"index token {token!r} of item {item!r} is not a single token of the "
                        f"tokenizer (it encodes to {encoded}); add the index tokens first"
                    )
                if encoded[0] == self.terminator:
                    raise ValueError(f"index of item {item!r} contains the terminator {token!r}")
                self._token_id[token] = encoded[0]
            ids.append(self._token_id[token])
        return ids

    def __len__(self) -> int:
        return len(self.items)

    def walk(self, token_ids: Sequence[int]) -> int | None:
        """Node reached from the root along ``token_ids``, or None if it leaves the tree."""
        node = 0
        for token in token_ids:
            node = self._children[node].get(token)
            if node is None:
                return None
        return node

    def item_of(self, token_ids: Sequence[int]) -> Hashable | None:
        """The item spelled by ``token_ids`` (index + terminator), or None if it is no item."""
        node = self.walk(token_ids)
        if node is None or self._leaf_item[node] < 0:
            return None
        return self.items[self._leaf_item[node]]

    def exhausted_nodes(self, items: Iterable[Hashable]) -> list[int]:
        """The nodes (root excluded) all of whose items are in ``items``, sorted: a search
        that must not return ``items`` never needs to enter them. Raises ``ValueError`` for
        an item the trie does not hold."""
        covered: Counter[int] = Counter()
        for item in set(items):
            if item not in self._path:
                raise ValueError(f"item {item!r} is not in the item index")
            covered.update(self._path[item])
        return sorted(node for node, n in covered.items() if n == self._items_below[node])

    def allowed_tokens(self, node: int) -> torch.Tensor:
        """Token ids that may follow ``node``: LongTensor (n_children,)."""
        start = self.child_start[node]
        return self.child_token[start : start + self.child_count[node]]


def _left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token-id lists: input_ids and attention_mask, LongTensor (batch, max_len)."""
    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, width - len(ids) :] = 1
    return input_ids, attention_mask


def _rank_in_group(group: torch.Tensor, score: torch.Tensor, n_groups: int) -> torch.Tensor:
    """0-based rank of every entry by descending score within its group.

    group: LongTensor (n,) with values in [0, n_groups); score: FloatTensor (n,).
    Returns LongTensor (n,).
    """
    order = torch.argsort(score, descending=True, stable=True)
    order = order[torch.argsort(group[order], stable=True)]
    sizes = torch.bincount(group, minlength=n_groups)
    starts = torch.cumsum(sizes, 0) - sizes
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=group.device) - starts[group[order]]
    return rank


def _pruned_keys(
    trie: ItemTrie, exclude: Sequence[Collection[Hashable]] | None, n_users: int, device
) -> torch.Tensor:
    """``user * trie.n_nodes + node`` of every node pruned for a user (all its items
    excluded, :meth:`ItemTrie.exhausted_nodes`): sorted LongTensor (n_pruned,)."""
    if exclude is None:
        return torch.empty(0, dtype=torch.long, device=device)
    if len(exclude) != n_users:
        raise ValueError(f"{len(exclude)} exclusion sets for {n_users} prompts")
    keys = [
        user * trie.n_nodes + node
        for user, items in enumerate(exclude)
        for node in trie.exhausted_nodes(items)
    ]
    return torch.tensor(keys, dtype=torch.long, device=device)


def candidate_log_probs(
    logits: torch.Tensor, parent: torch.Tensor, token: torch.Tensor, beam_scores: str
) -> torch.Tensor:
    """Log-probability of each candidate ``token`` of beam ``parent``: FloatTensor
    (n_candidates,) from logits (n_rows, vocab). ``vocabulary``: log-softmax over the
    whole vocabulary; ``allowed``: over the candidates of the same beam (every beam with
    a candidate has its full allowed set among them)."""
    logits = logits.float()
    if beam_scores == "vocabulary":
        return torch.log_softmax(logits, dim=-1)[parent, token]
    chosen = logits[parent, token]
    top = torch.full((logits.shape[0],), -torch.inf, device=logits.device)
    top.scatter_reduce_(0, parent, chosen, reduce="amax")
    shifted = chosen - top[parent]
    total = torch.zeros_like(top).index_add_(0, parent, shifted.exp())
    return shifted - total.log()[parent]


@torch.inference_mode()
def trie_beam_search(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    trie: ItemTrie,
    k: int,
    *,
    exclude: Sequence[Collection[Hashable]] | None = None,
    beam_scores: str = "vocabulary",
) -> list[list[tuple[Hashable, float]]]:
    """Top-k items for each left-padded prompt by beam search over ``trie`` (k beams).

    input_ids, attention_mask: LongTensor (batch, prompt_len), left-padded.
    exclude: per prompt, item ids never to return (module docstring: pruned from that
    prompt's trie); beam_scores: one of :data:`BEAM_SCORES`.
    Returns, per prompt, ``min(k, items left)`` pairs ``(item, log-prob)``, best first.

    The prompts are forwarded once, with the model's own attention, into a prompt cache.
    The decoding steps then forward one token per live beam (rows of any unsettled user;
    ``user``, ``node``, ``score``: (n_rows,)) with `model_zoo.prompt_attention`,
    which reads the prompt cache in place; only the beams' own decoded tokens live in a
    per-beam cache that follows the beams (``Cache.reorder_cache``).
    """
    device = input_ids.device
    trie_tensors = (trie.child_start, trie.child_count, trie.child_token, trie.child_node)
    child_start, child_count, child_token, child_node = (t.to(device) for t in trie_tensors)
    leaf_item = trie.leaf_item.to(device)
    n_users = input_ids.shape[0]
    if beam_scores not in BEAM_SCORES:
        raise ValueError(
            f"beam_scores must be one of {', '.join(BEAM_SCORES)}, got {beam_scores!r}"
        )
    pruned = _pruned_keys(trie, exclude, n_users, device)

    prompt_cache = DynamicCache(config=model.config)
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=(attention_mask.cumsum(-1) - 1).clamp(min=0),
        past_key_values=prompt_cache,
        use_cache=True,
        logits_to_keep=1,
    ).logits
    prompt_mask = attention_mask.bool()
    beam_cache = DynamicCache(config=model.config)
    user = torch.arange(n_users, device=device)
    node = torch.zeros(n_users, dtype=torch.long, device=device)
    score = torch.zeros(n_users, device=device)
    position = attention_mask.sum(-1)  # of each beam's next token
    finished_score = torch.full((n_users, k), -torch.inf, device=device)
    finished_item = torch.full((n_users, k), -1, dtype=torch.long, device=device)

    while True:
        # Candidates: every trie child of every live beam not pruned for its user,
        # (n_candidates,) each.
        counts = child_count[node]
        parent = torch.repeat_interleave(torch.arange(node.numel(), device=device), counts)
        nth_child = (
            torch.arange(parent.numel(), device=device) - (counts.cumsum(0) - counts)[parent]
        )
        edge = child_start[node[parent]] + nth_child
        token, child = child_token[edge], child_node[edge]
        if pruned.numel():
            key = user[parent] * trie.n_nodes + child
            nearest = pruned[torch.searchsorted(pruned, key).clamp(max=pruned.numel() - 1)]
            kept = nearest != key
            parent, token, child = parent[kept], token[kept], child[kept]
        step = candidate_log_probs(logits[:, -1], parent, token, beam_scores)
        cand_score = score[parent] + step
        cand_user = user[parent]
        is_leaf = leaf_item[child] >= 0

        # Leaves among each user's top-k candidates finish; merge them into the top-k items.
        done_now = is_leaf & (_rank_in_group(cand_user, cand_score, n_users) < k)
        slot = _rank_in_group(cand_user[done_now], cand_score[done_now], n_users)
        new_score = torch.full_like(finished_score, -torch.inf)
        new_item = torch.full_like(finished_item, -1)
        new_score[cand_user[done_now], slot] = cand_score[done_now]
        new_item[cand_user[done_now], slot] = leaf_item[child[done_now]]
        finished_score, best = torch.cat([finished_score, new_score], 1).topk(k, dim=1)
        finished_item = torch.cat([finished_item, new_item], 1).gather(1, best)

        # The best k unfinished candidates of each user become its beams; a user is settled
        # once no beam can still beat its k-th finished item (scores only decrease).
        open_ = torch.nonzero(~is_leaf).squeeze(1)
        open_ = open_[_rank_in_group(cand_user[open_], cand_score[open_], n_users) < k]
        best_open = torch.full((n_users,), -torch.inf, device=device)
        best_open.scatter_reduce_(0, cand_user[open_], cand_score[open_], reduce="amax")
        unsettled = best_open > finished_score[:, -1]
        keep = open_[unsettled[cand_user[open_]]]
        if keep.numel() == 0:
            break

        rows = parent[keep]
        beam_cache.reorder_cache(rows)
        position = position[rows]
        user, node, score = cand_user[keep], child[keep], cand_score[keep]
        shared = SharedPrompt(
            prompt_cache, prompt_mask, user, _rank_in_group(user, score, n_users), k
        )
        with attention_implementation(model, SHARED_PROMPT_ATTENTION):
            logits = model(
                input_ids=token[keep, None],
                position_ids=position[:, None],
                past_key_values=beam_cache,
                use_cache=True,
                cached_prompt=shared,
            ).logits
        position = position + 1

    results = []
    for scores, items in zip(finished_score.tolist(), finished_item.tolist(), strict=True):
        results.append([(trie.items[i], s) for s, i in zip(scores, items, strict=True) if i >= 0])
    return results


def _batches(tokenizer, prompts: Sequence[str], batch_size: int):
    """Yield (prompt positions, input_ids, attention_mask) over length-sorted batches."""
    lead, texts = encode_prompts(tokenizer, prompts)
    if any(len(ids) == 0 for ids in texts):
        raise ValueError("empty prompt")
    encoded = [[*lead, *ids] for ids in texts]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    for start in range(0, len(order), batch_size):
        positions = order[start : start + batch_size]
        yield positions, *_left_pad([encoded[i] for i in positions], pad_id)


def recommend(
    model,
    tokenizer,
    prompts: Sequence[str],
    trie: ItemTrie,
    k: int = 20,
    batch_size: int = 32,
    *,
    exclude: Sequence[Collection[Hashable]] | None = None,
    beam_scores: str = "vocabulary",
) -> list[list[tuple[Hashable, float]]]:
    """Top-k items with their log-probabilities for every prompt, best first.

    ``prompts`` are complete model inputs (chat template already applied); they are
    tokenised without adding special tokens, sorted by length and decoded ``batch_size``
    users at a time. Memory per batch: the prompts' KV cache once, plus at most
    ``trie.depth`` cached tokens and one row of logits per beam (``batch_size * k`` beams).
    ``exclude`` (per prompt, items never returned) and ``beam_scores``: :func:`trie_beam_search`.
    Each list holds ``min(k, items not excluded)`` distinct items. Call ``model.eval()`` first.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if exclude is not None and len(exclude) != len(prompts):
        raise ValueError(f"{len(exclude)} exclusion sets for {len(prompts)} prompts")
    device = next(model.parameters()).device
    results: list[list[tuple[Hashable, float]]] = [[] for _ in prompts]
    for positions, input_ids, attention_mask in _batches(tokenizer, prompts, batch_size):
        found = trie_beam_search(
            model,
            input_ids.to(device),
            attention_mask.to(device),
            trie,
            k,
            exclude=None if exclude is None else [exclude[i] for i in positions],
            beam_scores=beam_scores,
        )
        for position, items in zip(positions, found, strict=True):
            results[position] = items
    return results


class TrieLogitsProcessor(LogitsProcessor):
    """Keeps only the trie continuations of each beam (others get -inf) inside ``generate``.

    The beam's node is found by walking the tokens generated after the (padded) prompt of
    length ``prompt_length``; a beam that already left the trie (a -inf filler beam)
    gets no allowed token.
    """

    def __init__(self, trie: ItemTrie, prompt_length: int) -> None:
        self.trie = trie
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """input_ids: LongTensor (n_beams, length); scores: FloatTensor (n_beams, vocab)."""
        no_token = torch.empty(0, dtype=torch.long)
        allowed = []
        for row in input_ids[:, self.prompt_length :].tolist():
            node = self.trie.walk(row)
            allowed.append(no_token if node is None else self.trie.allowed_tokens(node))
        counts = torch.tensor([len(tokens) for tokens in allowed])
        rows = torch.repeat_interleave(torch.arange(len(allowed)), counts).to(scores.device)
        tokens = torch.cat(allowed).to(scores.device)
        masked = torch.full_like(scores, -torch.inf)
        masked[rows, tokens] = scores[rows, tokens]
        return masked


@torch.inference_mode()
def recommend_with_generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    trie: ItemTrie,
    k: int = 20,
    batch_size: int = 8,
) -> list[list[tuple[Hashable, float]]]:
    """Reference for :func:`recommend` built on ``model.generate`` beam search.

    Same inputs and outputs; needs ``k >= 2`` (with one beam ``generate`` runs greedy search,
    which reports no sequence scores). ``generate`` keeps ``num_beams = k`` hypotheses even when the
    trie offers fewer; the filler hypotheses carry a score of -1e9 or -inf and are dropped.
    """
    if k < 2:
        raise ValueError(f"generate's beam search needs k >= 2, got {k}")
    device = next(model.parameters()).device
    results: list[list[tuple[Hashable, float]]] = [[] for _ in prompts]
    for positions, input_ids, attention_mask in _batches(tokenizer, prompts, batch_size):
        prompt_length = input_ids.shape[1]
        out = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            logits_processor=LogitsProcessorList([TrieLogitsProcessor(trie, prompt_length)]),
            num_beams=k,
            num_return_sequences=k,
            max_new_tokens=trie.depth,
            do_sample=False,
            length_penalty=0.0,
            early_stopping=False,
            eos_token_id=trie.terminator,
            pad_token_id=tokenizer.pad_token_id,
            output_scores=True,
            return_dict_in_generate=True,
        )
        generated = out.sequences[:, prompt_length:].view(len(positions), k, -1).tolist()
        scores = out.sequences_scores.view(len(positions), k).tolist()
        for position, user_ids, user_scores in zip(positions, generated, scores, strict=True):
            items = []
            for ids, score in zip(user_ids, user_scores, strict=True):
                if score > _HF_SENTINEL_SCORE:
                    length = ids.index(trie.terminator) + 1
                    items.append((trie.item_of(ids[:length]), score))
            results[position] = items
    return results
