"""min_pixels / max_pixels: the images trained on (and sent to vLLM) lie within the bounds."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from model_zoo import resolve
from model_zoo.processors import load_processor
from observe_r1.training.config import ConfigError
from observe_r1.training.pixels import PixelBounds, bounded_image, pixel_bounds
from tests.observe_r1.training.test_trainer import RecordingObserveR1, _trainer, config_for


class RecordingGrids(RecordingObserveR1):
    def _generate(self, prompts):  # what vLLM would be handed (its processor resizes again)
        self.generated_sizes = getattr(self, "generated_sizes", [])
        for message in prompts:
            for part in _parts(message):
                self.generated_sizes.append(part["image"].size)
        return super()._generate(prompts)

    def _compute_loss(self, model, inputs):
        self.grids = getattr(self, "grids", [])
        self.grids.append(inputs["image_grid_thw"].clone())
        return super()._compute_loss(model, inputs)


def _parts(conversation):
    return [
        part
        for turn in conversation
        if isinstance(turn["content"], list)
        for part in turn["content"]
        if part.get("type") == "image"
    ]


def test_training_images_are_resized_within_the_bounds(tmp_path):
    # the 112 x 112 counting images: the tiny processor's own bounds give 4 x 4 patches
    config = config_for(tmp_path, min_pixels=784, max_pixels=1568, max_steps=1)
    trainer = _trainer(config, RecordingGrids)
    trainer.train()
    grids = torch.cat(trainer.grids)
    assert grids.tolist() == [[1, 2, 2]] * len(grids)  # 28 x 28 pixels: 1,568 at most
    assert trainer.processing_class.image_processor.size["longest_edge"] == 1568
    assert trainer.generated_sizes and set(trainer.generated_sizes) == {(28, 28)}


def test_bounded_image_matches_the_processor_and_leaves_fitting_images_alone():
    processor = load_processor(resolve("tiny-qwen2.5-vl"))
    bounds = pixel_bounds(processor, 784, 1568, use_vllm=False)
    assert bounds == PixelBounds(28, 784, 1568)
    image = Image.new("RGB", (300, 90), "white")
    resized = bounded_image(image, bounds)
    assert resized.size == (56, 28)
    assert bounded_image(resized, bounds) is resized
    grid = processor.image_processor(images=[image])["image_grid_thw"].tolist()
    assert grid == [[1, 28 // 14, 56 // 14]]  # same size the processor picks on its own


def test_vllm_needs_bounds_within_the_models_own():
    processor = load_processor(resolve("tiny-qwen2.5-vl"))  # own bounds [3136, 6272]
    with pytest.raises(ConfigError, match=r"within the model's own \[3136, 6272\]"):
        pixel_bounds(processor, 784, 1568, use_vllm=True)
    assert pixel_bounds(processor, 3136, 4000, use_vllm=True).max_pixels == 4000


def test_fixed_resolution_processors_refuse_pixel_bounds():
    processor = load_processor(resolve("tiny-llava"))
    with pytest.raises(ConfigError, match="dynamic-resolution"):
        pixel_bounds(processor, None, 4000, use_vllm=False)
