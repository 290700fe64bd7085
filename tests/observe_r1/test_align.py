"""Alignment stages on tiny parts: label masking, what trains, the asset layout."""

import torch
from safetensors.torch import load_file
from transformers import Dinov2Config, Dinov2Model

from model_zoo import resolve
from model_zoo.smolvlm import assemble, assemble_aligned, verified_assets
from observe_r1.align import ChatCollator, run_align, stage_dataset
from observe_r1.data.rows import read_rows
from observe_r1.demo import draw_counting_rows


def tiny_vision(folder):
    config = Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=64, image_size=112)  # fmt: skip
    torch.manual_seed(0)
    Dinov2Model(config).save_pretrained(folder)
    return str(folder)


def test_collator_puts_loss_on_the_target_only(tmp_path):
    rows = read_rows(draw_counting_rows(tmp_path / "data", n=2)).rows
    _, processor = assemble(tiny_vision(tmp_path / "vision"), resolve("tiny-llama"))
    dataset = stage_dataset(rows, "projector", "observe")
    batch = ChatCollator(processor)([dataset[0], dataset[1]])
    tokenizer = processor.tokenizer
    for row, labels in zip(rows, batch["labels"], strict=True):
        target = tokenizer.decode(labels[labels != -100])
        assert target == row["caption"] + tokenizer.eos_token
    image_positions = batch["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<image>")
    assert image_positions.sum() == 2 * 64 and (batch["labels"][image_positions] == -100).all()


def test_format_stage_asks_choice_rows_with_lettered_options():
    row = {
        "image": "x.png",
        "question": "How many red circles?",
        "choices": ["3", "1"],
        "answer": "1",
        "caption": "1 red circle.",
        "rationale": "The value 1 is option B.",
    }
    example = stage_dataset([row], "format", "observe")[0]
    asked = example["messages"][-1]["content"][-1]["text"]
    assert "Options:\nA. 3\nB. 1\n" in asked and asked.startswith("How many red circles?")
    assert example["target"].endswith("<answer>B</answer>")


def test_run_align_trains_projector_then_language_lora(tmp_path):
    rows = read_rows(draw_counting_rows(tmp_path / "data", n=4)).rows
    vision = tiny_vision(tmp_path / "vision")
    parts = (vision, resolve("tiny-llama"))
    before, _ = assemble(*parts)
    assets = run_align(rows, tmp_path / "assets", tmp_path / "work", projector_steps=3,
                       format_steps=2, batch_size=2, parts=parts)  # fmt: skip
    files = verified_assets(assets)
    assert {"projector.safetensors", "lora/adapter_config.json"} <= set(files)
    projector = load_file(files["projector.safetensors"])
    initial = before.model.multi_modal_projector.state_dict()
    assert any(not torch.equal(projector[k], initial[k]) for k in initial)
    adapter = load_file(assets / "lora" / "adapter_model.safetensors")
    lora = [name for name in adapter if "lora_" in name]
    assert lora and all("language_model" in name for name in lora)
    copies = {name for name in adapter if "multi_modal_projector" in name}
    assert copies and set(adapter) == set(lora) | copies  # stage 2 tuned the projector too
    assert not any("vision" in name for name in adapter)
    aligned, _ = assemble_aligned(*parts, assets)
    tuned = {k.split("multi_modal_projector.")[1]: v for k, v in adapter.items() if k in copies}
    merged = aligned.model.multi_modal_projector.state_dict()
    assert tuned.keys() == merged.keys()
    assert all(torch.equal(merged[k], tuned[k]) for k in tuned)
    assert any(not torch.equal(tuned[k], projector[k]) for k in tuned)


def test_resumed_projector_stage_keeps_the_trained_weights(tmp_path):
    rows = read_rows(draw_counting_rows(tmp_path / "data", n=4)).rows
    parts = (tiny_vision(tmp_path / "vision"), resolve("tiny-llama"))
    settings = {"projector_steps": 3, "format_steps": 0, "batch_size": 2, "parts": parts}
    first = run_align(rows, tmp_path / "first", tmp_path / "work", **settings)
    again = run_align(rows, tmp_path / "again", tmp_path / "work", resume=True, **settings)
    trained = load_file(first / "projector.safetensors")
    resumed = load_file(again / "projector.safetensors")  # finished run: nothing left to train
    assert all(torch.equal(trained[k], resumed[k]) for k in trained)
