import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from eager_llm.decoding import ItemTrie, candidate_log_probs, recommend, recommend_with_generate
from model_zoo import resolve

N_USERS = 6


def _catalogue() -> dict[str, list[str]]:
    """30 items: 29 three-token indices and one four-token index extending item0's."""
    codes = [(a, b, c) for a in range(4) for b in range(3) for c in range(3)][:29]
    index = {f"item{i}": [f"<a_{a}>", f"<b_{b}>", f"<c_{c}>"] for i, (a, b, c) in enumerate(codes)}
    index["long"] = [*index["item0"], "<d_0>"]
    return index


@pytest.fixture(scope="module", params=["tiny-llama", "tiny-qwen2", "tiny-qwen3"])
def setup(request):
    folder = resolve(request.param)  # qwen2: tied, pad = EOS; qwen3: tied, pad != EOS
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    index = _catalogue()
    tokenizer.add_tokens(sorted({token for tokens in index.values() for token in tokens}))
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    # Larger random weights than the default init: peaked, prompt-dependent distributions,
    # so that beams get pruned and users get different rankings.
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(0, 0.3, generator=generator)
    rng = random.Random(0)
    prompts = []
    for _ in range(N_USERS):
        history = [index[rng.choice(list(index))] for _ in range(rng.randrange(1, 8))]
        text = "History: " + ", ".join("".join(tokens) for tokens in history)
        prompts.append(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
        )
    trie = ItemTrie(index, tokenizer)
    return SimpleNamespace(
        model=model, tokenizer=tokenizer, index=index, trie=trie, prompts=prompts
    )


def _assert_same(results_a, results_b):
    for a, b in zip(results_a, results_b, strict=True):
        assert [item for item, _ in a] == [item for item, _ in b]
        assert [score for _, score in a] == pytest.approx([score for _, score in b], abs=1e-4)


# ---- trie ------------------------------------------------------------------------------


def test_trie_structure(setup):
    trie, tokenizer = setup.trie, setup.tokenizer
    assert len(trie) == 30
    assert trie.depth == 5  # four tokens + EOS
    first = {tokenizer.convert_tokens_to_ids(f"<a_{a}>") for a in range(4)}
    assert set(trie.allowed_tokens(0).tolist()) == first
    # item0's index is a strict prefix of "long": the terminator keeps both reachable.
    ids = trie.sequences["item0"]
    assert ids[-1] == tokenizer.eos_token_id
    assert trie.item_of(ids) == "item0"
    assert trie.item_of(trie.sequences["long"]) == "long"
    assert set(trie.allowed_tokens(trie.walk(ids[:-1])).tolist()) == {
        tokenizer.eos_token_id,
        tokenizer.convert_tokens_to_ids("<d_0>"),
    }
    assert trie.item_of(ids[:-1]) is None  # no terminator yet
    assert trie.walk([tokenizer.eos_token_id]) is None


def test_trie_rejects_duplicate_index(setup):
    index = {"x": ["<a_0>", "<b_1>"], "y": ["<a_0>", "<b_1>"]}
    with pytest.raises(ValueError, match="'x' and 'y' have the same index"):
        ItemTrie(index, setup.tokenizer)


@pytest.mark.parametrize("token", ["<zz_1>", "<a_0><b_0>", "hello world"])
def test_trie_rejects_multi_token_index_tokens(setup, token):
    with pytest.raises(ValueError, match="not a single token"):
        ItemTrie({"x": ["<a_0>", token]}, setup.tokenizer)


def test_trie_rejects_empty_index_and_terminator(setup):
    with pytest.raises(ValueError, match="empty index"):
        ItemTrie({"x": []}, setup.tokenizer)
    with pytest.raises(ValueError, match="terminator"):
        ItemTrie({"x": ["<a_0>", setup.tokenizer.eos_token]}, setup.tokenizer)


# ---- beam search -----------------------------------------------------------------------


def test_every_result_is_a_distinct_real_item_sorted(setup):
    results = recommend(setup.model, setup.tokenizer, setup.prompts, setup.trie, k=10)
    assert len(results) == N_USERS
    for ranked in results:
        items = [item for item, _ in ranked]
        scores = [score for _, score in ranked]
        assert len(items) == 10
        assert len(set(items)) == 10
        assert set(items) <= set(setup.index)
        assert scores == sorted(scores, reverse=True)
    assert len({tuple(item for item, _ in ranked) for ranked in results}) > 1


@pytest.mark.parametrize("k", [30, 50])
def test_k_up_to_catalogue_returns_every_item(setup, k):
    results = recommend(setup.model, setup.tokenizer, setup.prompts, setup.trie, k=k)
    for ranked in results:
        assert sorted(item for item, _ in ranked) == sorted(setup.index)


def test_scores_are_model_log_probs(setup):
    model, tokenizer, trie = setup.model, setup.tokenizer, setup.trie
    prompt = setup.prompts[0]
    ranked = recommend(model, tokenizer, [prompt], trie, k=30)[0]
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    for item, score in ranked:
        ids = torch.tensor([prompt_ids + trie.sequences[item]])
        with torch.no_grad():
            log_probs = model(input_ids=ids).logits[0, :-1].log_softmax(-1)
        targets = ids[0, 1:]
        per_token = log_probs.gather(1, targets[:, None])[len(prompt_ids) - 1 :]
        assert score == pytest.approx(per_token.sum().item(), abs=1e-4)


def test_batched_equals_per_user(setup):
    batched = recommend(setup.model, setup.tokenizer, setup.prompts, setup.trie, k=8, batch_size=4)
    single = [
        recommend(setup.model, setup.tokenizer, [p], setup.trie, k=8)[0] for p in setup.prompts
    ]
    _assert_same(batched, single)


@pytest.mark.parametrize("k", [2, 5, 30])
def test_matches_generate_reference(setup, k):
    args = (setup.model, setup.tokenizer, setup.prompts, setup.trie)
    _assert_same(recommend(*args, k=k, batch_size=3), recommend_with_generate(*args, k=k))


def test_single_beam_is_greedy_over_the_trie(setup):
    model, tokenizer, trie = setup.model, setup.tokenizer, setup.trie
    prompt_ids = tokenizer(setup.prompts[0], add_special_tokens=False)["input_ids"]
    path, node, score = [], 0, 0.0
    while trie.leaf_item[node] < 0:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([prompt_ids + path])).logits[0, -1]
        log_probs = logits.log_softmax(-1)
        allowed = trie.allowed_tokens(node)
        token = allowed[log_probs[allowed].argmax()].item()
        score += log_probs[token].item()
        path.append(token)
        node = trie.walk(path)
    [(item, found)] = recommend(model, tokenizer, setup.prompts[:1], trie, k=1)[0]
    assert item == trie.item_of(path)
    assert found == pytest.approx(score, abs=1e-4)


def test_prompt_is_encoded_once_per_user(setup):
    attention = setup.model.config._attn_implementation
    shapes = []
    hook = setup.model.model.register_forward_pre_hook(
        lambda _, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    try:
        recommend(setup.model, setup.tokenizer, setup.prompts[:3], setup.trie, k=5)
    finally:
        hook.remove()
    assert shapes[0][0] == 3  # one row per user, not per beam
    assert all(width == 1 for _, width in shapes[1:])  # then one new token per live beam
    assert max(rows for rows, _ in shapes[1:]) <= 3 * 5
    assert setup.model.config._attn_implementation == attention  # restored after decoding


def test_invalid_arguments_and_no_prompts(setup):
    args = (setup.model, setup.tokenizer)
    with pytest.raises(ValueError, match="k must be"):
        recommend(*args, setup.prompts, setup.trie, k=0)
    with pytest.raises(ValueError, match="empty prompt"):
        recommend(*args, ["", setup.prompts[0]], setup.trie)
    assert recommend(*args, [], setup.trie) == []


# ---- seen items removed ----------------------------------------------------------------

# Per user: most of the <a_0> branch (item0..item8 and "long": all but item5) and a few more.
BRANCH_MOSTLY_SEEN = [f"item{i}" for i in range(9) if i != 5] + ["long"]


def _exclusions(setup) -> list[set[str]]:
    rng = random.Random(1)
    others = [item for item in setup.index if item not in BRANCH_MOSTLY_SEEN]
    return [{*BRANCH_MOSTLY_SEEN, *rng.sample(others, 3)} for _ in setup.prompts]


def test_exhausted_nodes_are_those_whose_every_item_is_excluded(setup):
    trie = setup.trie
    c0 = trie.walk(trie.sequences["item0"][:3])  # <a_0><b_0><c_0>: item0 and "long" below
    leaf0 = trie.walk(trie.sequences["item0"])
    assert trie.exhausted_nodes(["item0"]) == [leaf0]  # "long" still below <c_0>
    assert c0 in trie.exhausted_nodes(["item0", "long"])
    b0 = trie.walk(trie.sequences["item0"][:2])
    assert b0 not in trie.exhausted_nodes(["item0", "long", "item1"])
    assert b0 in trie.exhausted_nodes(["item0", "long", "item1", "item2"])
    assert len(trie.exhausted_nodes(setup.index)) == trie.n_nodes - 1  # all but the root
    with pytest.raises(ValueError, match="'nope' is not in the item index"):
        trie.exhausted_nodes(["nope"])


def test_removed_items_never_come_out_and_k_items_still_do(setup):
    args = (setup.model, setup.tokenizer, setup.prompts, setup.trie)
    exclude = _exclusions(setup)
    kept = recommend(*args, k=10)
    removed = recommend(*args, k=10, exclude=exclude)
    assert any(
        {item for item, _ in ranked} & seen for ranked, seen in zip(kept, exclude, strict=True)
    )
    for ranked, seen in zip(removed, exclude, strict=True):
        items = [item for item, _ in ranked]
        assert len(items) == 10 == len(set(items))
        assert not set(items) & seen
        assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_removal_is_beam_search_over_the_trie_of_the_unseen_items(setup):
    model, tokenizer = setup.model, setup.tokenizer
    exclude = _exclusions(setup)
    removed = recommend(model, tokenizer, setup.prompts, setup.trie, k=5, exclude=exclude)
    for prompt, seen, ranked in zip(setup.prompts, exclude, removed, strict=True):
        unseen = {item: tokens for item, tokens in setup.index.items() if item not in seen}
        [expected] = recommend(model, tokenizer, [prompt], ItemTrie(unseen, tokenizer), k=5)
        _assert_same([ranked], [expected])


def test_exhaustive_removal_is_keep_then_drop_the_seen_items(setup):
    # With k >= the unseen items no beam is ever cut, so both searches are exact rankings.
    args = (setup.model, setup.tokenizer, setup.prompts, setup.trie)
    exclude = _exclusions(setup)
    everything = recommend(*args, k=len(setup.index))
    removed = recommend(*args, k=len(setup.index) - min(map(len, exclude)), exclude=exclude)
    expected = [
        [(i, s) for i, s in ranked if i not in seen]
        for ranked, seen in zip(everything, exclude, strict=True)
    ]
    _assert_same(removed, expected)


def test_fewer_unseen_items_than_k_returns_all_of_them_and_no_more(setup):
    args = (setup.model, setup.tokenizer, setup.prompts[:2], setup.trie)
    unseen = ["item5", "item20", "long"]
    all_but_three = {item for item in setup.index if item not in unseen}
    few, none = recommend(*args, k=10, exclude=[all_but_three, set(setup.index)])
    assert sorted(item for item, _ in few) == sorted(unseen)
    assert none == []


def test_exclusions_must_match_the_prompts(setup):
    args = (setup.model, setup.tokenizer, setup.prompts, setup.trie)
    with pytest.raises(ValueError, match="exclusion sets"):
        recommend(*args, exclude=[set()])
    with pytest.raises(ValueError, match="not in the item index"):
        recommend(*args, exclude=[{"nope"}] * N_USERS)


# ---- beam scores normalised over the allowed tokens -------------------------------------


def test_allowed_scores_equal_vocabulary_scores_when_every_token_is_allowed():
    logits = torch.randn(3, 7, generator=torch.Generator().manual_seed(0))
    parent = torch.arange(3).repeat_interleave(7)
    token = torch.arange(7).repeat(3)
    full = candidate_log_probs(logits, parent, token, "vocabulary")
    allowed = candidate_log_probs(logits, parent, token, "allowed")
    assert torch.allclose(full, allowed, atol=1e-6)
    subset = candidate_log_probs(logits, parent[::2], token[::2], "allowed")
    assert not torch.allclose(subset, full[::2])
    for row in range(3):  # each beam's allowed candidates form a distribution
        assert subset[parent[::2] == row].exp().sum().item() == pytest.approx(1.0, abs=1e-6)


def test_allowed_scores_are_a_distribution_over_the_items(setup):
    args = (setup.model, setup.tokenizer, setup.prompts, setup.trie)
    k = len(setup.index)
    vocabulary = recommend(*args, k=k)
    allowed = recommend(*args, k=k, beam_scores="allowed")
    removed = recommend(*args, k=k, beam_scores="allowed", exclude=_exclusions(setup))
    for full, norm, unseen in zip(vocabulary, allowed, removed, strict=True):
        assert sum(np.exp(s) for _, s in norm) == pytest.approx(1.0, abs=1e-4)
        assert sum(np.exp(s) for _, s in unseen) == pytest.approx(1.0, abs=1e-4)
        assert sum(np.exp(s) for _, s in full) < 0.99  # mass on tokens off the trie
        scores = dict(norm)
        assert all(scores[item] > s for item, s in full)  # renormalised: higher everywhere


def test_allowed_scores_are_hand_computed_and_can_reorder(setup):
    model, tokenizer, trie = setup.model, setup.tokenizer, setup.trie
    reordered = 0
    for prompt in setup.prompts:
        ranked = recommend(model, tokenizer, [prompt], trie, k=30, beam_scores="allowed")[0]
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        for item, score in ranked[:3]:
            path, expected = trie.sequences[item], 0.0
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([prompt_ids + path])).logits[0]
            for depth, token in enumerate(path):
                allowed = trie.allowed_tokens(trie.walk(path[:depth]))
                row = logits[len(prompt_ids) - 1 + depth]
                expected += (row[token] - row[allowed].logsumexp(0)).item()
            assert score == pytest.approx(expected, abs=1e-4)
        full = recommend(model, tokenizer, [prompt], trie, k=30)[0]
        reordered += [i for i, _ in ranked] != [i for i, _ in full]
    assert reordered > 0  # forced levels' log-probabilities reorder the full-vocabulary scores


def test_unknown_beam_scores_is_refused(setup):
    with pytest.raises(ValueError, match="beam_scores must be one of vocabulary, allowed"):
        recommend(setup.model, setup.tokenizer, setup.prompts, setup.trie, beam_scores="full")
