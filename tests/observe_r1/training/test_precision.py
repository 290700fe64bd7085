"""bf16 trains: fp32 master weights + bf16 autocast wherever the engine keeps no fp32 copy."""

from __future__ import annotations

import pytest
import torch
from trl import GRPOTrainer

from observe_r1.training.train import engine_keeps_fp32_master, policy_dtype
from tests.observe_r1.training.test_trainer import RecordingObserveR1, _trainer, config_for


@pytest.fixture(autouse=True)
def native_bf16(monkeypatch):
    """The mechanism under test runs on any CPU (emulated where it has no bf16 units), so the
    configs keep ``bf16: true`` here instead of turning it off as on a real AVX2-only run."""
    from model_zoo import hardware

    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)


def test_bf16_at_the_paper_learning_rate_moves_the_weights(tmp_path):
    config = config_for(
        tmp_path, bf16="true", learning_rate="1e-6", max_steps=2, max_completion_length=8
    )
    trainer = _trainer(config, RecordingObserveR1)
    model = trainer.model
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    layer = model.model.language_model.layers[0].mlp.down_proj
    seen: list[torch.dtype] = []
    layer.register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    trainer.train()

    assert trainer.accelerator.mixed_precision == "bf16"
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # master weights
    assert seen and set(seen) == {torch.bfloat16}, "forward passes run under bf16 autocast"
    assert trainer.ref_model is not None
    assert {p.dtype for p in trainer.ref_model.parameters()} == {torch.bfloat16}
    changed = total = 0
    for name, p in model.named_parameters():
        if "language_model" in name and "embed_tokens" not in name:  # unused rows stay put
            changed += (p.detach() != before[name]).sum().item()
            total += p.numel()
    assert changed / total > 0.99, f"only {changed / total:.1%} of LM weights moved"


@pytest.mark.parametrize(
    ("bf16", "engine", "lora", "expected"),
    [
        (False, False, False, torch.float32),
        (False, True, True, torch.float32),
        (True, False, False, torch.float32),  # DDP / one device: fp32 master + autocast
        (True, True, False, torch.bfloat16),  # DeepSpeed / FSDP keep the fp32 copy
        (True, False, True, torch.bfloat16),  # frozen base; PEFT keeps adapters fp32
    ],
)
def test_policy_dtype(bf16, engine, lora, expected):
    assert policy_dtype(bf16, engine_keeps_master=engine, lora=lora) == expected


def test_engine_detection_reads_the_accelerate_launch_environment(tmp_path, monkeypatch):
    config = config_for(tmp_path)
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    assert not engine_keeps_fp32_master(config)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert engine_keeps_fp32_master(config)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "false")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    assert engine_keeps_fp32_master(config)


def test_lora_under_bf16_trains_fp32_adapters_over_a_bf16_base(tmp_path):
    config = config_for(tmp_path, bf16="true", lora="{r: 4, alpha: 8}")
    trainer = _trainer(config, RecordingObserveR1)
    params = list(trainer.model.named_parameters())
    assert {p.dtype for _, p in params if p.requires_grad} == {torch.float32}
    assert {p.dtype for _, p in params if not p.requires_grad} == {torch.bfloat16}


@pytest.mark.parametrize("bf16", [True, False])
def test_generation_runs_in_one_bf16_autocast_region_only_under_bf16(tmp_path, monkeypatch, bf16):
    """TRL's generation is entered inside the region, so autocast (and its weight-cast cache)
    spans every decoded token; accelerate's per-forward regions would not be open there."""
    seen: list[tuple[bool, torch.dtype]] = []
    stock = GRPOTrainer._generate

    def recording(self, prompts):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return stock(self, prompts)

    monkeypatch.setattr(GRPOTrainer, "_generate", recording)
    config = config_for(tmp_path, bf16=str(bf16).lower(), max_steps=1, max_completion_length=4)
    _trainer(config, RecordingObserveR1).train()
    assert seen, "no generation ran"
    assert {enabled for enabled, _ in seen} == {bf16}
    if bf16:
        assert {dtype for _, dtype in seen} == {torch.bfloat16}
