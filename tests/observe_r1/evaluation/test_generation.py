"""`observe_r1.evaluation.generation`: each prompt prefilled once, finished rows dropped, the same
tokens as ``model.generate`` when greedy and the same draws when sampled (tiny real models)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoTokenizer

from model_zoo import resolve
from model_zoo.processors import load_processor
from observe_r1.evaluation import generation
from observe_r1.evaluation.generation import Decoding, generate_ids, next_tokens, until_stop

QUESTIONS = ["How many circles are there?", "Colour?", "What is the largest shape in it?"]
SYSTEM = "You answer questions about shapes, briefly and with care. Question: "
NEVER = {10**9}  # a stop id no model emits: every row runs to max_new_tokens


def model_and_inputs(name: str, system: str = ""):
    """A tiny model and a left-padded batch of three prompts of different lengths (the
    chat template's, or ``system`` before each question, as a common prefix)."""
    folder = resolve(name)
    torch.manual_seed(0)
    if name == "tiny-llava":
        model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32)
        processor = load_processor(folder)
        tokenizer = processor.tokenizer
        tokenizer.padding_side = "left"
        messages = [
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}]
            for q in QUESTIONS
        ]
        texts = [processor.apply_chat_template(m, add_generation_prompt=True) for m in messages]
        images = [Image.new("RGB", (32, 32), c) for c in ("red", "blue", "green")]
        inputs = processor(text=texts, images=images, padding=True, return_tensors="pt")
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
        tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
        inputs = tokenizer([system + q for q in QUESTIONS], padding=True, return_tensors="pt")
    assert (inputs["attention_mask"] == 0).any(), "the prompts must differ in length"
    return model.eval(), dict(inputs), tokenizer.pad_token_id


def stop_that_splits(free: list[list[int]]) -> int:
    """A token of row 0 that, as a stop id, ends the rows at different steps."""
    for token in free[0][1:]:
        ends = {ids.index(token) if token in ids else len(ids) for ids in free}
        if len(ends) > 1:
            return token
    raise AssertionError("no token splits the rows")


def both_paths(model, inputs, decoding, stops, pad, seed=0):
    runs = []
    for shared in (False, True):
        torch.manual_seed(seed)
        runs.append(generate_ids(model, inputs, decoding, stops, pad, shared_prefix=shared))
    return runs


@pytest.mark.parametrize(
    ("name", "system"), [("tiny-llava", ""), ("tiny-llama", ""), ("tiny-llama", SYSTEM)]
)  # tiny-qwen2 repeats one token
def test_greedy_rows_that_stop_at_different_steps_get_generates_tokens(name, system):
    model, inputs, pad = model_and_inputs(name, system)
    free = generate_ids(model, inputs, Decoding(max_new_tokens=12), NEVER, pad)
    stops = {stop_that_splits(free)}  # rows finish at different steps (or never)
    stock, shared = both_paths(model, inputs, Decoding(max_new_tokens=12), stops, pad)
    assert shared == stock
    lengths = sorted(len(ids) for ids in shared)
    assert lengths[0] < 12 and lengths[0] < lengths[-1], lengths  # some stop early, not all
    assert all(ids[-1] in stops for ids in shared if len(ids) < 12)


@pytest.mark.parametrize(
    ("name", "system"), [("tiny-llava", ""), ("tiny-llama", SYSTEM), ("tiny-qwen2", SYSTEM)]
)
def test_each_of_the_n_copies_of_a_prompt_continues_it_as_generate_does(name, system):
    """The repeated cache is each copy's prefill: greedy, every copy gives the tokens
    ``generate`` gives the prompt alone (which refuses n > 1 without sampling)."""
    model, inputs, pad = model_and_inputs(name, system)
    alone = generate_ids(
        model, inputs, Decoding(max_new_tokens=10), NEVER, pad, shared_prefix=False
    )
    copies = generate_ids(model, inputs, Decoding(n=4, max_new_tokens=10), NEVER, pad)
    assert copies == [ids for ids in alone for _ in range(4)]


def test_draws_follow_the_probabilities_and_never_pick_a_zero():
    """A chi-square test of 20,000 draws per row against the rows' probabilities."""
    from scipy.stats import chisquare

    probabilities = torch.tensor([[0.5, 0.0, 0.3, 0.2], [0.0, 0.1, 0.0, 0.9]])
    torch.manual_seed(0)
    draws = torch.stack([generation.draw(probabilities) for _ in range(20_000)])
    for row, p in enumerate(probabilities):
        counts = torch.bincount(draws[:, row], minlength=4)
        assert (counts[p == 0] == 0).all()
        observed = counts[p > 0].double()
        expected = observed.sum() * p[p > 0].double() / p[p > 0].double().sum()
        assert chisquare(observed.numpy(), expected.numpy()).pvalue > 1e-3


def test_a_row_that_stops_leaves_the_others_distribution_unchanged(monkeypatch):
    """The logits the sampler sees for a continuing row are the same whether or not the
    other rows are still in the batch (the dropped rows leave the cache with them)."""
    model, inputs, pad = model_and_inputs("tiny-llama")
    seen = []
    monkeypatch.setattr(
        generation,
        "next_tokens",
        lambda logits, d: seen.append(logits.clone()) or logits.argmax(-1),
    )
    free = generate_ids(model, inputs, Decoding(max_new_tokens=8), NEVER, pad)
    alone = list(seen)
    seen.clear()
    stop_row0 = {free[0][2]} - set(free[1]) - set(free[2])
    assert stop_row0, "row 0's third token must not occur in rows 1 and 2"
    generate_ids(model, inputs, Decoding(max_new_tokens=8), stop_row0, pad)
    assert seen[3].size(0) < alone[3].size(0)  # row 0 has left the batch
    torch.testing.assert_close(seen[3], alone[3][-seen[3].size(0) :], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["tiny-llava", "tiny-llama"])
def test_a_copy_that_stops_leaves_its_prompts_other_copies_unchanged(name, monkeypatch):
    """With n copies reading their prompt's cache in place, one copy's stop drops its row
    alone: every other row's logits are those of the run where it went on."""
    model, inputs, pad = model_and_inputs(name)
    stop = 10**6  # beyond the vocabulary: only the forced draw below emits it
    seen = []

    def argmax_but_row_1_stops_at_step_2(logits, decoding):
        seen.append(logits.clone())
        tokens = logits.argmax(-1)
        if forced and len(seen) == 3:
            tokens[1] = stop  # copy 1 of prompt 0
        return tokens

    monkeypatch.setattr(generation, "next_tokens", argmax_but_row_1_stops_at_step_2)
    runs = {}
    for forced in (False, True):
        seen.clear()
        runs[forced] = generate_ids(model, inputs, Decoding(n=3, max_new_tokens=6), {stop}, pad)
        runs[forced, "logits"] = list(seen)
    went_on, stopped = runs[False, "logits"], runs[True, "logits"]
    assert runs[True][1][-1] == stop and len(runs[True][1]) == 3
    assert [ids for i, ids in enumerate(runs[True]) if i != 1] == [
        ids for i, ids in enumerate(runs[False]) if i != 1
    ]
    others = [row for row in range(went_on[3].size(0)) if row != 1]
    for step in range(3, 6):
        assert stopped[step].size(0) == went_on[step].size(0) - 1
        torch.testing.assert_close(stopped[step], went_on[step][others], rtol=1e-5, atol=1e-5)


def test_the_prompt_is_prefilled_once_for_its_n_completions():
    model, inputs, pad = model_and_inputs("tiny-llama")  # no common prefix
    lengths = []
    hook = model.register_forward_pre_hook(
        lambda _, args, kwargs: lengths.append(kwargs["input_ids"].shape), with_kwargs=True
    )
    generate_ids(model, inputs, Decoding(n=5, max_new_tokens=3, do_sample=True), NEVER, pad)
    hook.remove()
    prompt = inputs["input_ids"].shape
    assert lengths == [prompt, (15, 1), (15, 1)]  # one prefill of 3 prompts, then 15 rows


def test_models_with_3d_positions_take_generate(monkeypatch):
    model, inputs, pad = model_and_inputs("tiny-llama")
    monkeypatch.setattr(generation, "SHARED_PREFIX_TYPES", ())
    called = []
    original = model.generate
    monkeypatch.setattr(model, "generate", lambda **k: called.append(k) or original(**k))
    generate_ids(model, inputs, Decoding(n=2, max_new_tokens=3, do_sample=True), NEVER, pad)
    assert called and called[0]["num_return_sequences"] == 2


def test_sampling_keeps_only_the_top_k_tokens_and_greedy_takes_the_argmax():
    logits = torch.tensor([[0.0, 3.0, 2.0, -1.0], [5.0, 0.0, 0.0, 4.9]])
    assert next_tokens(logits, Decoding()).tolist() == [1, 0]
    torch.manual_seed(0)
    draws = torch.stack(
        [next_tokens(logits, Decoding(do_sample=True, top_k=2)) for _ in range(300)]
    )
    assert set(draws[:, 0].tolist()) == {1, 2} and set(draws[:, 1].tolist()) == {0, 3}
    assert next_tokens(logits, Decoding(suppress=(1, 0))).tolist() == [2, 3]


def test_until_stop_keeps_the_stop_token_and_drops_what_follows():
    assert until_stop([5, 6, 2, 0, 0], {2}) == [5, 6, 2]
    assert until_stop([5, 6], {2}) == [5, 6]


def test_the_common_prefix_of_the_rows_runs_once_and_stops_before_the_image():
    model, inputs, pad = model_and_inputs("tiny-llama", SYSTEM)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    shared = generation.common_prefix_length(ids, mask, image_token=None)
    assert shared >= generation.MIN_SHARED_PREFIX
    start = int((mask[0] == 0).sum())
    for row in range(3):
        first = int((mask[row] == 0).sum())
        assert torch.equal(ids[row, first : first + shared], ids[0, start : start + shared])
    image = int(ids[0, start + 3])
    assert generation.common_prefix_length(ids, mask, image_token=image) == 3
    lengths = []
    hook = model.register_forward_pre_hook(
        lambda _, args, kwargs: lengths.append(kwargs["input_ids"].shape), with_kwargs=True
    )
    generate_ids(model, inputs, Decoding(max_new_tokens=2), NEVER, pad)
    hook.remove()
    assert lengths[0] == (1, shared) and lengths[1][0] == 3  # the prefix once, then the rests
    assert lengths[1][1] == ids.size(1) - shared - min(int((m == 0).sum()) for m in mask)


def test_bf16_generation_runs_under_autocast_and_fp32_without():
    model, inputs, pad = model_and_inputs("tiny-llama")
    seen = []
    hook = model.register_forward_pre_hook(lambda *_: seen.append(torch.is_autocast_enabled("cpu")))
    for precision in ("bf16", "fp32"):
        generate_ids(model, inputs, Decoding(max_new_tokens=2), NEVER, pad, precision=precision)
    hook.remove()
    assert seen == [True, True, False, False]
    with pytest.raises(ValueError, match="precision"):
        generate_ids(model, inputs, Decoding(max_new_tokens=2), NEVER, pad, precision="fp16")


def test_a_reserved_cache_holds_what_a_dynamic_one_holds_through_selections():
    """Writes into reserved room, row selections (keeping the room: no new reservation at
    the next write) and a repeat give the keys and values `DynamicLayer` gives."""
    from transformers.cache_utils import DynamicLayer

    torch.manual_seed(0)
    reserved, plain = generation.ReservedLayer(), DynamicLayer()
    states = lambda rows, n: (torch.randn(rows, 2, n, 4), torch.randn(rows, 2, n, 4))  # noqa: E731
    steps = [
        ("update", states(4, 5)),
        ("update", states(4, 1)),
        ("select", torch.tensor([0, 2, 3])),
    ]
    steps += [("update", states(3, 1)), ("select", torch.tensor([2, 0])), ("update", states(2, 1))]
    steps += [("repeat", 2), ("update", states(4, 1))]
    room_after_select = None
    for op, argument in steps:
        for layer in (reserved, plain):
            if op == "update":
                layer.update(*argument)
            elif op == "select":
                layer.batch_select_indices(argument)
            else:
                layer.batch_repeat_interleave(argument)
        if op == "update" and room_after_select is not None:
            assert reserved.room[0].data_ptr() == room_after_select  # written into the room
        room_after_select = reserved.room[0].data_ptr() if op == "select" else None
        torch.testing.assert_close(reserved.keys, plain.keys, rtol=0, atol=0)
        torch.testing.assert_close(reserved.values, plain.values, rtol=0, atol=0)
