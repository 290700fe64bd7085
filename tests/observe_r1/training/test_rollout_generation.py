"""GRPO rollouts through shared-prefix generation: groups found, plain configs only, the same
tokens as ``generate`` (greedy), and the trainer's rollouts taking the path."""

from __future__ import annotations

import torch
from transformers import GenerationConfig

from observe_r1.training import rollout_generation
from observe_r1.training.rollout_generation import group_size, patched_generate, plain_decoding
from observe_r1.training.trainer import ObserveR1Trainer
from tests.observe_r1.evaluation.test_generation import SYSTEM, model_and_inputs
from tests.observe_r1.training.test_trainer import _trainer, config_for


def grouped(inputs: dict, n: int) -> dict:
    return {field: value.repeat_interleave(n, dim=0) for field, value in inputs.items()}


def test_group_size_is_the_common_length_of_the_runs_of_identical_rows():
    ids = torch.tensor([[1, 2], [1, 2], [3, 4], [3, 4]])
    assert group_size({"input_ids": ids, "attention_mask": torch.ones_like(ids)}) == 2
    assert group_size({"input_ids": ids[[0, 1, 1, 2]]}) is None  # runs of 1, 2, 1
    assert group_size({"input_ids": ids[[0, 2]]}) is None  # no repeats
    pixels = torch.arange(4.0).view(4, 1)  # same text, other images: no group
    assert group_size({"input_ids": ids, "pixel_values": pixels}) is None
    assert group_size({"input_ids": ids, "image_sizes": ids}) is None  # an unknown field


def test_only_plain_sampling_or_greedy_is_taken():
    plain = GenerationConfig(do_sample=True, temperature=0.7, top_k=0, max_new_tokens=8)
    decoding = plain_decoding(plain, 4)
    assert (decoding.n, decoding.temperature, decoding.top_k, decoding.do_sample) == (
        4,
        0.7,
        0,
        True,
    )
    for extra in ({"top_p": 0.9}, {"min_p": 0.1}, {"repetition_penalty": 1.1}):
        assert (
            plain_decoding(GenerationConfig(do_sample=True, max_new_tokens=8, **extra), 4) is None
        )


def test_a_grouped_batch_gets_generates_greedy_tokens():
    model, inputs, pad = model_and_inputs("tiny-llama", SYSTEM)
    batch = grouped(inputs, 3)
    config = GenerationConfig(do_sample=False, max_new_tokens=8, eos_token_id=2, pad_token_id=pad)
    stock = model.generate(**batch, generation_config=config)
    with patched_generate(model):
        shared = model.generate(**batch, generation_config=config)
    assert "generate" not in vars(model)  # the class's method again
    width = stock.size(1)
    assert torch.equal(shared[:, :width], stock) and (shared[:, width:] == pad).all()


def test_the_trainers_rollouts_take_the_shared_prefix_path(tmp_path, monkeypatch):
    calls = []
    taken = rollout_generation.generate_ids
    monkeypatch.setattr(
        rollout_generation, "generate_ids", lambda *a, **k: calls.append(a[1]) or taken(*a, **k)
    )
    config = config_for(tmp_path, model="tiny-llava", max_steps=1, max_completion_length=8)
    trainer = _trainer(config, ObserveR1Trainer)
    trainer.train()
    rows = trainer.args.per_device_train_batch_size * trainer.args.steps_per_generation
    assert calls and sum(c["input_ids"].size(0) for c in calls) * trainer.num_generations == rows
