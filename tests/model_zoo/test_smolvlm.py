"""The default VLM: assets are checksum-verified; the assembled LLaVA sees 64 image tokens."""

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText

from model_zoo import resolve
from model_zoo.processors import load_processor
from model_zoo.smolvlm import (
    CHECKSUMS,
    AssetChecksumError,
    verified_assets,
    write_checksums,
)


def test_assets_are_verified_against_their_checksums(tmp_path):
    (tmp_path / "projector.safetensors").write_bytes(b"weights")
    (tmp_path / "lora").mkdir()
    (tmp_path / "lora" / "adapter.bin").write_bytes(b"adapter")
    write_checksums(tmp_path)
    assert set(verified_assets(tmp_path)) == {"projector.safetensors", "lora/adapter.bin"}

    (tmp_path / "projector.safetensors").write_bytes(b"weightz")
    with pytest.raises(AssetChecksumError, match=r"projector.safetensors: SHA-256 mismatch"):
        verified_assets(tmp_path)
    (tmp_path / "projector.safetensors").unlink()
    with pytest.raises(AssetChecksumError, match="missing"):
        verified_assets(tmp_path)


def test_no_assets_means_nothing_to_verify(tmp_path):
    assert verified_assets(tmp_path) == {}
    assert not (tmp_path / CHECKSUMS).exists()


def test_smolvlm_dino_assembles_and_generates():
    folder = resolve("smolvlm-dino")
    processor = load_processor(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder)
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    batch = processor(text=[text], images=[Image.new("RGB", (300, 200))], return_tensors="pt")
    assert (batch["input_ids"] == model.config.image_token_id).sum() == 64  # 112 px / 14 = 8x8
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert (
        out.shape[1] == batch["input_ids"].shape[1] + 4
        or out[0, -1] == model.config.text_config.eos_token_id
    )
