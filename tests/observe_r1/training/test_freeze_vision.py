"""``freeze_vision``: the vision encoder's weights stay as loaded while the language model
trains, and LoRA puts no adapter inside the encoder."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForImageTextToText

from model_zoo import resolve
from observe_r1.training.train import build_trainer
from observe_r1.training.trainer import ObserveR1Trainer
from tests.observe_r1.training.test_trainer import _trainer, config_for


@pytest.mark.parametrize("frozen", [True, False])
def test_a_frozen_vision_tower_keeps_its_weights_while_the_language_model_trains(tmp_path, frozen):
    config = config_for(
        tmp_path, freeze_vision=frozen, max_steps=1, max_completion_length=8, learning_rate=1e-3
    )
    before = AutoModelForImageTextToText.from_pretrained(resolve(config.model)).state_dict()
    trainer = _trainer(config, ObserveR1Trainer)  # rewards that vary inside a group
    trainer.train()
    after = trainer.model.state_dict()
    vision = [name for name in before if name.startswith("model.visual.")]
    language = [name for name in before if name.startswith("model.language_model.layers.")]
    assert vision and language

    def moved(names):
        return [name for name in names if not torch.equal(after[name], before[name])]

    assert len(moved(language)) > 0.9 * len(language)
    assert (moved(vision) == []) == frozen  # unfrozen, the encoder trains too


@pytest.mark.parametrize(("frozen", "tower"), [(True, 0), (False, 1)])
def test_lora_stays_off_a_frozen_vision_tower(tmp_path, frozen, tower):
    config = config_for(tmp_path, model="tiny-llava", lora="{r: 2, alpha: 4}", freeze_vision=frozen)
    model = build_trainer(config).model
    adapters = [name for name, _ in model.named_parameters() if "lora_" in name]
    in_tower = [name for name in adapters if ".vision_tower." in name]
    assert adapters and bool(in_tower) == bool(tower)
    assert any(".multi_modal_projector." in name for name in adapters)  # the projector trains
