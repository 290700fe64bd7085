"""Image pixel bounds (``min_pixels`` / ``max_pixels``) for Qwen-VL dynamic resolution.

The bounds are applied to the images themselves, before TRL sees them: each image is
resized to the size Qwen-VL's ``smart_resize`` gives it (sides multiples of patch x merge,
area within the bounds). The HF processor then leaves it as it is, and so does vLLM's
processor (built from the model folder with the model's own, wider bounds): both count the
same image tokens, which TRL needs since it hands vLLM its own prompt token ids.
(``smart_resize`` comes from the PIL image processor module: no torchvision needed.)
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
    smart_resize,
)  # no torchvision

from observe_r1.training.config import ConfigError


@dataclass(frozen=True)
class PixelBounds:
    factor: int  # patch_size x merge_size: sides are multiples of it
    min_pixels: int
    max_pixels: int


def _processor_bounds(image_processor) -> tuple[int, int]:
    size = image_processor.size
    return size["shortest_edge"], size["longest_edge"]


def pixel_bounds(processor, min_pixels: int | None, max_pixels: int | None, *, use_vllm: bool):
    """The bounds to apply with ``processor`` (None when neither is set); sets them on its
    image processor too, so that a saved processor resizes the same way."""
    if min_pixels is None and max_pixels is None:
        return None
    image_processor = getattr(processor, "image_processor", None)
    if not all(hasattr(image_processor, a) for a in ("patch_size", "merge_size", "size")):
        raise ConfigError(
            f"min_pixels / max_pixels need a Qwen-VL style dynamic-resolution image processor; "
            f"{type(image_processor).__name__} resizes every image to a fixed size"
        )
    own_min, own_max = _processor_bounds(image_processor)
    low = own_min if min_pixels is None else min_pixels
    high = own_max if max_pixels is None else max_pixels
    if low > high:
        raise ConfigError(f"min_pixels ({low}) exceeds max_pixels ({high})")
    if use_vllm and (low < own_min or high > own_max):
        raise ConfigError(
            f"with use_vllm the pixel bounds must lie within the model's own [{own_min}, "
            f"{own_max}] (vLLM's processor resizes with those), got [{low}, {high}]"
        )
    image_processor.size = {"shortest_edge": low, "longest_edge": high}
    factor = image_processor.patch_size * image_processor.merge_size
    return PixelBounds(factor, low, high)


def bounded_image(image: Image.Image, bounds: PixelBounds) -> Image.Image:
    """``image`` resized to the Qwen-VL size within ``bounds`` (unchanged if already so)."""
    height, width = smart_resize(
        image.height, image.width, bounds.factor, bounds.min_pixels, bounds.max_pixels
    )
    if (height, width) == (image.height, image.width):
        return image
    return image.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
