"""Indexing rules on small synthetic embeddings, collisions, tokens and tokenizer round trip."""

import numpy as np
import pytest
import torch
from benchmarks.balanced_assignment import clustered_distances, reference_balanced_assignment
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from eager_llm.indexing import (
    INDEXERS,
    Codes,
    add_index_tokens,
    build_item_index,
    check_bijection,
    index_vocabulary,
    load_item_index,
    make_indexer,
    resolve_collisions,
    save_item_index,
)
from eager_llm.indexing.dki import codebook_usage
from eager_llm.indexing.kmeans import (
    balanced_assignment,
    balanced_kmeans,
    code_length,
    hierarchical_codes,
)
from eager_llm.indexing.rq import residual_kmeans_codes
from eager_llm.indexing.tokens import token
from model_zoo import resolve


def blobs(n_per_blob, centers, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=20, size=(centers, dim))
    return np.concatenate([m + rng.normal(size=(n_per_blob, dim)) for m in means]), means


@pytest.mark.parametrize(
    ("n", "k", "length"),
    [(1, 256, 1), (256, 256, 1), (257, 256, 2), (1349, 256, 2), (1349, 16, 3), (65536, 256, 2)],
)
def test_code_length_is_ceil_log_k(n, k, length):
    assert code_length(n, k) == length


@pytest.mark.parametrize(("n", "k"), [(10, 3), (12, 4), (7, 7), (100, 9), (5, 8)])
def test_balanced_assignment_sizes(n, k):
    labels = balanced_assignment(np.random.default_rng(n).random((n, k)))
    sizes = np.bincount(labels, minlength=k)
    assert sizes.sum() == n and set(sizes) <= {n // k, n // k + 1}
    assert (sizes == n // k + 1).sum() == n % k


def test_balanced_assignment_prefers_near_clusters():
    # two points want cluster 0 (capacity 1): the nearer one gets it
    labels = balanced_assignment(np.array([[1.0, 5.0], [0.5, 9.0]]))
    assert labels.tolist() == [1, 0]


@pytest.mark.parametrize("seed", range(30))
def test_balanced_assignment_equals_the_plain_greedy(seed):
    # k = 1, n < k, n % k == 0 and != 0; real-valued distances, integer ones (many ties), and
    # clusters every point ranks alike (the capacities bind: many chunks)
    rng = np.random.default_rng(seed)
    drawn = int(rng.integers(1, 300)), int(rng.integers(1, 40))
    for n, k in [(1, 1), (9, 1), (3, 8), (8, 8), (64, 8), (67, 8), drawn]:
        for distances in (
            rng.random((n, k)),
            rng.integers(0, 3, (n, k)).astype(np.float64),
            rng.random((n, k)) + rng.random() * np.arange(k),
        ):
            expected = reference_balanced_assignment(distances)
            assert np.array_equal(balanced_assignment(distances), expected), (n, k)
    distances = clustered_distances(1000, 32, rng)  # the capacities bind: several chunks
    assert np.array_equal(balanced_assignment(distances), reference_balanced_assignment(distances))


def test_balanced_assignment_keeps_the_greedy_order_on_nan():
    distances = np.random.default_rng(0).random((60, 16))
    distances[::2, :8] = np.nan  # most points reach the NaN pairs (argsort puts them last)
    expected = reference_balanced_assignment(distances)
    assert np.array_equal(balanced_assignment(distances), expected)


def test_balanced_kmeans_recovers_equal_blobs():
    points, _ = blobs(10, 4)
    labels = balanced_kmeans(points, 4)
    assert np.bincount(labels).tolist() == [10] * 4
    for blob in labels.reshape(4, 10):
        assert len(set(blob)) == 1


def test_balanced_kmeans_balances_unequal_blobs():
    points = np.concatenate([blobs(30, 1, seed=1)[0], blobs(6, 1, seed=2)[0]])
    assert sorted(np.bincount(balanced_kmeans(points, 3))) == [12, 12, 12]


@pytest.mark.parametrize(("n", "k"), [(200, 4), (64, 8), (65, 8), (30, 256), (300, 16)])
def test_hierarchical_codes_are_unique_balanced_and_ceil_log_k_long(n, k):
    points = np.random.default_rng(n).normal(size=(n, 6))
    codes = hierarchical_codes(points, k)
    assert codes.shape == (n, code_length(n, k))
    assert len(np.unique(codes, axis=0)) == n
    assert codes.min() >= 0 and codes.max() < k
    top = np.bincount(codes[:, 0], minlength=k)
    if n > k:  # the top level uses the whole codebook in equal-size clusters
        assert (top > 0).all() and top.max() - top.min() <= 1
    prefixes, sizes = np.unique(codes[:, :-1], axis=0, return_counts=True)
    assert sizes.max() <= k  # each leaf cluster numbers at most k items


def test_hierarchical_codes_keep_identical_embeddings_together():
    points = np.random.default_rng(0).normal(size=(20, 4))
    points[10:] = points[:10]  # every embedding twice
    codes = hierarchical_codes(points, 3)
    assert codes.shape == (20, code_length(10, 3))
    assert np.array_equal(codes[10:], codes[:10])
    assert len(np.unique(codes, axis=0)) == 10


def test_residual_kmeans_codes_refine_level_by_level():
    points, means = blobs(20, 4)
    codes = residual_kmeans_codes(points, 4)
    assert codes.shape == (80, code_length(80, 4)) and codes.max() < 4
    for blob in codes[:, 0].reshape(4, 20):
        assert len(set(blob)) == 1  # level 1 finds the blobs
    assert len(np.unique(codes, axis=0)) > len(np.unique(codes[:, :1], axis=0))


def test_registry_and_dual_source_layout():
    assert set(INDEXERS) == {
        "dki",
        "dki-bf",
        "semantic",
        "behaviour",
        "rq-kmeans",
        "rq-bf",
        "rq-behav",
        "rq-semantic",
    }
    with pytest.raises(ValueError, match="unknown indexer 'tiger'"):
        make_indexer("tiger")
    with pytest.raises(ValueError, match="k must be >= 2"):
        make_indexer("dki", k=1)
    rng = np.random.default_rng(0)
    embeddings = {"semantic": rng.normal(size=(40, 5)), "behaviour": rng.normal(size=(40, 3))}
    dki = make_indexer("dki", k=4).fit(embeddings)
    assert dki.level_sources == ("semantic",) * 3 + ("behaviour",) * 3
    semantic = make_indexer("semantic", k=4).fit(embeddings)
    behaviour = make_indexer("behaviour", k=4).fit(embeddings)
    assert np.array_equal(dki.values, np.hstack([semantic.values, behaviour.values]))
    rq = make_indexer("rq-kmeans", k=4).fit(embeddings)
    assert rq.level_sources == dki.level_sources
    rq_behaviour = make_indexer("rq-behav", k=4).fit(embeddings)
    rq_bf = make_indexer("rq-bf", k=4).fit(embeddings)
    assert np.array_equal(rq_behaviour.values, rq_bf.values[:, :3])  # rq-bf minus semantic


def test_resolve_collisions_appends_a_reported_suffix_level():
    codes = Codes(np.array([[0, 1], [0, 1], [2, 3], [0, 1], [2, 4]]), ("semantic", "behaviour"))
    resolved, report = resolve_collisions(codes)
    assert resolved.level_sources == ("semantic", "behaviour", "suffix")
    assert resolved.values[:, -1].tolist() == [0, 1, 0, 2, 0]
    assert len(np.unique(resolved.values, axis=0)) == 5
    assert report == {
        "collision_rate": 0.6,
        "colliding_items": 3,
        "colliding_groups": 1,
        "largest_group": 3,
        "extra_levels": 1,
    }
    usage = codebook_usage(resolved, k=8)
    assert [(u["used"], u["size"]) for u in usage] == [(2, 8), (3, 8), (3, 3)]
    unique = Codes(np.array([[0], [1]]), ("semantic",))
    same, report = resolve_collisions(unique)
    assert same is unique and report["collision_rate"] == 0 and report["extra_levels"] == 0


def test_tokens_index_and_bijection(tmp_path):
    assert token(0, 12) == "<a_12>" and token(3, 0) == "<d_0>"
    with pytest.raises(ValueError, match="at most 26 levels"):
        token(26, 0)
    index = build_item_index(["x", "y"], np.array([[12, 3], [2, 3]]))
    assert index == {"x": ["<a_12>", "<b_3>"], "y": ["<a_2>", "<b_3>"]}
    assert index_vocabulary(index) == ["<a_2>", "<a_12>", "<b_3>"]
    check_bijection(index)
    save_item_index(index, tmp_path / "index.json")
    assert load_item_index(tmp_path / "index.json") == index
    assert (tmp_path / "index.json").read_text().count("\n") == 2 + len(index)
    with pytest.raises(ValueError, match="items 'x' and 'z' share the index <a_12><b_3>"):
        check_bijection({**index, "z": ["<a_12>", "<b_3>"]})
    with pytest.raises(ValueError, match="not an index token"):
        index_vocabulary({"x": ["a_1"]})


def tiny_index():
    codes = np.array([[0, 5, 1], [0, 5, 2], [7, 0, 1], [255, 255, 0]])
    return build_item_index(["i1", "i2", "i3", "i4"], codes)


def test_add_index_tokens_round_trip_on_tiny_llama():
    folder = resolve("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert not model.config.tie_word_embeddings
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_out = model.get_output_embeddings().weight.detach().clone()
    item_index = tiny_index()

    added = add_index_tokens(tokenizer, model, item_index)
    assert added == index_vocabulary(item_index) and len(added) == 9
    for tokens in item_index.values():
        text = "".join(tokens)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert len(ids) == len(tokens)  # each index token is one id
        assert tokenizer.convert_ids_to_tokens(ids) == tokens
        assert tokenizer.decode(ids) == text
    ids = tokenizer.convert_tokens_to_ids(added)
    assert ids == list(range(len(old_in), len(old_in) + len(added)))
    new_in = model.get_input_embeddings().weight.detach()
    new_out = model.get_output_embeddings().weight.detach()
    assert new_in.shape == (len(tokenizer), old_in.shape[1]) == new_out.shape
    assert torch.equal(new_in[: len(old_in)], old_in)
    assert torch.allclose(new_in[ids], old_in.mean(0).expand(len(ids), -1))
    assert torch.allclose(new_out[ids], old_out.mean(0).expand(len(ids), -1))
    assert model.config.vocab_size == len(tokenizer)
    logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), len(tokenizer))
    assert add_index_tokens(tokenizer, model, item_index) == []  # already there


def test_add_index_tokens_with_tied_embeddings():
    tokenizer = AutoTokenizer.from_pretrained(resolve("tiny-llama"))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    old = model.get_input_embeddings().weight.detach().clone()
    ids = tokenizer.convert_tokens_to_ids(add_index_tokens(tokenizer, model, tiny_index()))
    weight = model.get_input_embeddings().weight
    assert model.get_output_embeddings().weight is weight
    assert torch.allclose(weight[ids], old.mean(0).expand(len(ids), -1))


@pytest.mark.parametrize("paper_name, first_name", [("dki", "dki-bf"), ("rq-kmeans", "rq-bf")])
def test_behaviour_first_indexers_put_the_behaviour_levels_first(paper_name, first_name):
    rng = np.random.default_rng(0)
    embeddings = {"semantic": rng.normal(size=(30, 4)), "behaviour": rng.normal(size=(30, 4))}
    paper = make_indexer(paper_name, k=6).fit(embeddings)
    first = make_indexer(first_name, k=6).fit(embeddings)
    assert first.level_sources == ("behaviour", "behaviour", "semantic", "semantic")
    swapped = np.concatenate([paper.values[:, 2:], paper.values[:, :2]], axis=1)
    assert np.array_equal(first.values, swapped)
