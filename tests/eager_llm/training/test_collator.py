"""Batches: prompt + response + EOS, loss on the response only, right padding, truncation."""

import pytest
import torch
from transformers import AutoTokenizer

from eager_llm.tasks import Sample
from eager_llm.training import ResponseCollator
from model_zoo import resolve


@pytest.fixture(scope="module")
def tokenizer():
    tokenizer = AutoTokenizer.from_pretrained(resolve("tiny-llama"))
    tokenizer.add_tokens(["<a_0>", "<b_1>"])
    return tokenizer


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_rows_labels_and_padding(tokenizer):
    samples = [
        Sample("History: x\nResponse:\n", "<a_0><b_1>", "seqrec", 3),
        Sample("Hi\n", "Beta", "fusion_index2title", 1),
    ]
    batch = ResponseCollator(tokenizer)(samples)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    prompt, response = ids(tokenizer, samples[0].prompt), ids(tokenizer, "<a_0><b_1>")
    assert response == tokenizer.convert_tokens_to_ids(["<a_0>", "<b_1>"])
    first = [*prompt, *response, eos]
    assert batch["input_ids"][0].tolist() == first
    assert batch["labels"][0].tolist() == [-100] * len(prompt) + [*response, eos]
    second = [*ids(tokenizer, "Hi\n"), *ids(tokenizer, "Beta"), eos]
    padding = len(first) - len(second)
    assert batch["input_ids"][1].tolist() == second + [pad] * padding
    assert batch["attention_mask"][1].tolist() == [1] * len(second) + [0] * padding
    assert batch["labels"][1].tolist()[-padding - 1 :] == [eos] + [-100] * padding
    assert batch["eos_positions"].tolist() == [len(first) - 1, len(second) - 1]
    assert batch["target_items"].tolist() == [3, 1]
    assert batch["gct_rows"].tolist() == [True, False]


def test_truncation_keeps_the_prompt_end_and_the_eos(tokenizer):
    sample = Sample("one two three four five six seven eight", "<a_0><b_1>", "seqrec", 0)
    collator = ResponseCollator(tokenizer, max_length=6)
    batch = collator([sample])
    row = batch["input_ids"][0].tolist()
    assert len(row) == 6
    assert row[:3] == ids(tokenizer, sample.prompt)[-3:]
    assert row[3:] == [*ids(tokenizer, "<a_0><b_1>"), tokenizer.eos_token_id]
    long_response = collator([Sample("p", "a b c d e f g h i j", "index2item", 0)])
    kept = ids(tokenizer, "a b c d e f g h i j")[:3]  # max_length // 2 response tokens
    assert long_response["labels"][0].tolist() == [-100, *kept, tokenizer.eos_token_id]
    assert torch.equal(long_response["eos_positions"], torch.tensor([4]))


def test_labelled_spans_label_history_items_in_the_prompt(tokenizer):
    prompt = "History: <a_0><b_1>, <b_1><a_0>. Next?\nResponse:\n"
    spans = ((9, 19), (21, 31))  # the two history items
    assert [prompt[a:b] for a, b in spans] == ["<a_0><b_1>", "<b_1><a_0>"]
    sample = Sample(prompt, "<a_0>", "seqrec", 0, spans[1:])
    a, b = tokenizer.convert_tokens_to_ids(["<a_0>", "<b_1>"])
    labels = ResponseCollator(tokenizer)([sample])["labels"][0].tolist()
    assert [t for t in labels if t != -100] == [b, a, a, tokenizer.eos_token_id]
    row = ResponseCollator(tokenizer)([sample])["input_ids"][0].tolist()
    assert all(t == -100 or t == row[i] for i, t in enumerate(labels))
    # a cut from the front keeps every kept label on its own token
    cut = ResponseCollator(tokenizer, max_length=12)([sample])
    pairs = zip(cut["input_ids"][0].tolist(), cut["labels"][0].tolist(), strict=True)
    kept = [(token, label) for token, label in pairs if label != -100]
    assert all(token == label for token, label in kept)
    assert [label for _, label in kept][-2:] == [a, tokenizer.eos_token_id]
