"""Loading processors on machines without torchvision.

transformers' Qwen2-VL / Qwen2.5-VL processors insist on a video processor, which needs
torchvision; without it ``AutoProcessor`` silently degrades to a bare tokenizer. Here
those models get an image-only processor instead; every other model loads unchanged.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from transformers import AutoProcessor, Qwen2_5_VLProcessor, Qwen2VLProcessor

_VIDEO_BOUND = {"Qwen2_5_VLProcessor", "Qwen2VLProcessor"}


class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL processor for images and text only (no torchvision needed)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)


class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
    """Qwen2-VL processor for images and text only (no torchvision needed)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)


_IMAGE_ONLY = {
    "Qwen2_5_VLProcessor": ImageOnlyQwen2_5_VLProcessor,
    "Qwen2VLProcessor": ImageOnlyQwen2VLProcessor,
}


def _declared_processor_class(name_or_path: str) -> str | None:
    config = Path(name_or_path) / "processor_config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text()).get("processor_class")


def load_processor(name_or_path: str, **kwargs):
    """``AutoProcessor.from_pretrained``, with image-only Qwen-VL processors when
    torchvision is absent. Hub ids are looked up as usual (and need network)."""
    declared = _declared_processor_class(name_or_path)
    if declared in _VIDEO_BOUND and importlib.util.find_spec("torchvision") is None:
        return _IMAGE_ONLY[declared].from_pretrained(name_or_path, **kwargs)
    return AutoProcessor.from_pretrained(name_or_path, **kwargs)


def save_processor(processor, out: Path) -> None:
    """Save a processor so that ``AutoProcessor`` sees the stock class name."""
    processor.save_pretrained(out)
    config_path = Path(out) / "processor_config.json"
    config = json.loads(config_path.read_text())
    for stock, image_only in _IMAGE_ONLY.items():
        if config.get("processor_class") == image_only.__name__:
            config["processor_class"] = stock
    config_path.write_text(json.dumps(config, indent=2))
