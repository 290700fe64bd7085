"""Title initialisation of index tokens: distinct codes get distinct rows, items stop tying."""

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from eager_llm.decoding import ItemTrie, recommend
from eager_llm.indexing import add_index_tokens, build_item_index
from eager_llm.indexing.token_init import code_members, code_vectors, projected_rows, title_rows
from model_zoo import resolve

TITLES = {
    "i1": "The Matrix",
    "i2": "Toy Story",
    "i3": "Star Wars",
    "i4": "Casablanca",
    "i5": "Fargo",
    "i6": "Heat",
}
CODES = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]])


def item_index():
    return build_item_index(list(TITLES), CODES)


def test_title_rows_offset_the_vocabulary_mean_by_a_typical_spread():
    matrix = torch.randn(50, 8) + 3.0  # a large common component, as LM embeddings have
    title_ids = {"x": [1, 2], "y": [3], "z": []}
    members = {"<a_0>": ["x", "y"], "<b_0>": ["z"], "<c_0>": ["x"]}
    rows = title_rows(matrix, title_ids, members, ["<a_0>", "<b_0>", "<c_0>"])
    mean = matrix.mean(0)
    spread = (matrix - mean).norm(dim=1).mean()
    offset = (matrix[[1, 2]].mean(0) + matrix[3]) / 2 - mean
    assert torch.allclose(rows[0], mean + offset * spread / offset.norm(), atol=1e-5)
    assert torch.allclose((rows[[0, 2]] - mean).norm(dim=1), spread.expand(2))
    assert torch.allclose(rows[1], mean)  # an item without a title: the vocabulary mean


def test_code_members_lists_each_tokens_items():
    members = code_members(item_index())
    assert members["<a_0>"] == ["i1", "i2"] and members["<b_1>"] == ["i2", "i4", "i6"]


def load(titles):
    folder = resolve("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    new = add_index_tokens(tokenizer, model, item_index(), titles)
    return tokenizer, model.eval(), tokenizer.convert_tokens_to_ids(new)


def item_scores(tokenizer, model):
    trie = ItemTrie(item_index(), tokenizer)
    [found] = recommend(model, tokenizer, ["history: <a_0><b_1>"], trie, k=len(TITLES))
    return [score for _, score in found]


def test_title_init_gives_distinct_rows_and_untrained_scores_without_ties():
    tokenizer, model, ids = load(TITLES)
    for weight in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
        rows = weight.detach()[ids]
        assert len({tuple(row.tolist()) for row in rows}) == len(ids)  # all distinct
    scores = item_scores(tokenizer, model)
    assert len(set(np.round(scores, 5))) == len(TITLES)  # no two items tie


def test_mean_init_ties_every_item():
    tokenizer, model, ids = load(None)
    rows = model.get_input_embeddings().weight.detach()[ids]
    assert torch.equal(rows, rows[0].expand_as(rows))
    scores = item_scores(tokenizer, model)
    assert max(scores) - min(scores) < 1e-4  # the failure title init removes


def test_code_vectors_average_each_tokens_items_in_its_levels_source():
    behaviour = np.arange(12.0).reshape(6, 2)
    vectors = code_vectors(
        item_index(), list(TITLES), ("behaviour", "suffix"), {"behaviour": behaviour}
    )
    centre = behaviour.mean(0)
    assert np.allclose(vectors["<a_0>"], behaviour[[0, 1]].mean(0) - centre)
    assert np.allclose(vectors["<a_2>"], behaviour[[4, 5]].mean(0) - centre)
    assert not any(tok.startswith("<b_") for tok in vectors)  # no source: left to titles


def test_projected_rows_keep_the_sources_geometry_at_the_vocabulary_spread():
    matrix = torch.randn(50, 64) + 3.0
    near, also_near, far = np.array([1.0, 0.0]), np.array([0.9, 0.1]), np.array([-1.0, 0.0])
    rows = projected_rows(matrix, [near, also_near, far])
    mean = matrix.mean(0)
    spread = (matrix - mean).norm(dim=1).mean()
    assert torch.allclose((rows - mean).norm(dim=1), spread.expand(3), rtol=1e-5)
    cosine = torch.nn.functional.cosine_similarity
    assert cosine(rows[0] - mean, rows[1] - mean, dim=0) > 0.9
    assert cosine(rows[0] - mean, rows[2] - mean, dim=0) < -0.99
    assert torch.equal(rows, projected_rows(matrix, [near, also_near, far]))  # fixed projection


def test_embedding_init_projects_sourced_levels_and_titles_the_rest():
    folder = resolve("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    behaviour = np.random.default_rng(0).normal(size=(6, 4))
    vectors = code_vectors(
        item_index(), list(TITLES), ("behaviour", "suffix"), {"behaviour": behaviour}
    )
    matrix = model.get_input_embeddings().weight.detach().clone()
    new = add_index_tokens(tokenizer, model, item_index(), TITLES, vectors)
    weight = model.get_input_embeddings().weight.detach()
    ids = dict(zip(new, tokenizer.convert_tokens_to_ids(new), strict=True))
    sourced = [t for t in new if t in vectors]
    assert torch.allclose(
        weight[[ids[t] for t in sourced]], projected_rows(matrix, [vectors[t] for t in sourced])
    )
    title_ids = dict(
        zip(
            TITLES,
            tokenizer(list(TITLES.values()), add_special_tokens=False)["input_ids"],
            strict=True,
        )
    )
    rest = [t for t in new if t not in vectors]
    expected = title_rows(matrix, title_ids, code_members(item_index()), rest)
    assert torch.allclose(weight[[ids[t] for t in rest]], expected, atol=1e-6)
    scores = item_scores(tokenizer, model.eval())
    assert len(set(np.round(scores, 5))) == len(TITLES)  # no two items tie
