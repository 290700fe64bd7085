"""Prompts carry the tokenizer's leading specials (LLaMA's BOS) in training and decoding alike."""

import pytest
from tokenizers import processors
from transformers import AutoTokenizer

from eager_llm.decoding import _batches
from eager_llm.prompt_ids import encode_prompts, leading_special_ids
from eager_llm.tasks import Sample
from eager_llm.training import ResponseCollator
from model_zoo import resolve


def tiny_tokenizer(template: str | None):
    """tiny-llama's tokenizer; ``template`` (e.g. ``"<|endoftext|> $A"``) adds specials."""
    tokenizer = AutoTokenizer.from_pretrained(resolve("tiny-llama"))
    if template:
        specials = [
            (t, tokenizer.convert_tokens_to_ids(t)) for t in ("<|endoftext|>", "<|im_end|>")
        ]
        tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single=template, special_tokens=specials
        )
    return tokenizer


@pytest.fixture(scope="module")
def bos_tokenizer():
    return tiny_tokenizer("<|endoftext|> $A")


def text_ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize(
    ("template", "lead"),
    [(None, []), ("<|endoftext|> $A", ["<|endoftext|>"]), ("$A <|im_end|>", [])],
)
def test_only_leading_specials_are_kept(template, lead):
    tokenizer = tiny_tokenizer(template)
    assert leading_special_ids(tokenizer) == tokenizer.convert_tokens_to_ids(lead)
    assert encode_prompts(tokenizer, ["a b c", "d"]) == (
        tokenizer.convert_tokens_to_ids(lead),
        [text_ids(tokenizer, "a b c"), text_ids(tokenizer, "d")],
    )


def test_training_rows_and_decoding_batches_start_with_bos(bos_tokenizer):
    bos = bos_tokenizer.convert_tokens_to_ids("<|endoftext|>")
    prompt = "History: 1 2 3\nResponse:\n"
    batch = ResponseCollator(bos_tokenizer)([Sample(prompt, "Beta", "seqrec", 0)])
    row = batch["input_ids"][0].tolist()
    assert row[: 1 + len(text_ids(bos_tokenizer, prompt))] == [
        bos,
        *text_ids(bos_tokenizer, prompt),
    ]
    [(_, input_ids, mask)] = list(_batches(bos_tokenizer, [prompt], batch_size=4))
    assert input_ids[0].tolist() == [bos, *text_ids(bos_tokenizer, prompt)]
    assert mask[0].all()


def test_truncation_keeps_the_bos(bos_tokenizer):
    bos = bos_tokenizer.convert_tokens_to_ids("<|endoftext|>")
    prompt = "one two three four five six seven eight"
    row = ResponseCollator(bos_tokenizer, max_length=6)([Sample(prompt, "x", "seqrec", 0)])
    kept = row["input_ids"][0].tolist()
    response = [*text_ids(bos_tokenizer, "x"), bos_tokenizer.eos_token_id]
    assert len(kept) == 6 and kept[0] == bos and kept[-len(response) :] == response
    assert kept[1 : 6 - len(response)] == text_ids(bos_tokenizer, prompt)[-(5 - len(response)) :]
