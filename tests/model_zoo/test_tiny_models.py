"""The tiny random models load through the Auto classes and run forward and generate."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoTokenizer,
)

from model_zoo import resolve
from model_zoo.processors import load_processor

IMAGE_PROMPT = [
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]}
]


def test_tiny_llama_chat_forward_and_generate():
    folder = resolve("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    batch = tokenizer.apply_chat_template(
        [[{"role": "user", "content": "hi"}], [{"role": "user", "content": "a longer question"}]],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
        padding=True,
    )
    out = model(**batch, labels=batch["input_ids"])
    assert out.logits.shape[:2] == batch["input_ids"].shape
    assert torch.isfinite(out.loss)
    generated = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert generated.shape == (2, batch["input_ids"].shape[1] + 4)


@pytest.mark.parametrize(
    ("name", "architecture", "eos", "bias"),
    [
        ("tiny-qwen2", "Qwen2ForCausalLM", "<|endoftext|>", True),  # q/k/v biases
        ("tiny-qwen3", "Qwen3ForCausalLM", "<|im_end|>", False),  # q/k RMSNorm instead
    ],
)
def test_tiny_qwen_has_its_familys_conventions(name, architecture, eos, bias):
    folder = resolve(name)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert type(tokenizer).__name__ == "Qwen2Tokenizer"
    assert type(model).__name__ == architecture
    assert tokenizer.bos_token is None and tokenizer.unk_token is None
    assert tokenizer.eos_token == eos and tokenizer.pad_token == "<|endoftext|>"
    text = "Toy Story (1995)"
    assert tokenizer(text)["input_ids"] == tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.tokenize(" 1995") == ["Ġ", "1", "9", "9", "5"]  # Qwen's digit split
    assert model.lm_head.weight is model.model.embed_tokens.weight
    attention = model.model.layers[0].self_attn
    assert (attention.q_proj.bias is not None) == bias
    assert hasattr(attention, "q_norm") == hasattr(attention, "k_norm") == (not bias)
    assert model.config.eos_token_id == model.generation_config.eos_token_id
    assert model.config.eos_token_id == tokenizer.eos_token_id
    assert model.config.pad_token_id == tokenizer.pad_token_id
    batch = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, return_tensors="pt",
        return_dict=True,
    )  # fmt: skip
    generated = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert generated.shape == (1, batch["input_ids"].shape[1] + 4)


@pytest.mark.parametrize(
    ("name", "architecture", "image_tokens"),
    [
        ("tiny-llava", "LlavaForConditionalGeneration", [16, 16]),  # fixed 56 px crop
        ("tiny-qwen2.5-vl", "Qwen2_5_VLForConditionalGeneration", [4, 6]),  # native aspect
        ("tiny-qwen2.5-vl-head32", "Qwen2_5_VLForConditionalGeneration", [4, 6]),
    ],
)
def test_tiny_vlm_processes_images_and_trains(name, architecture, image_tokens):
    folder = resolve(name)
    processor = load_processor(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder)
    assert type(model).__name__ == architecture
    text = processor.apply_chat_template(IMAGE_PROMPT, add_generation_prompt=True, tokenize=False)
    images = [Image.new("RGB", (112, 112), "red"), Image.new("RGB", (80, 60), "blue")]
    batch = processor(text=[text, text], images=images, return_tensors="pt", padding=True)
    image_token_id = model.config.image_token_id
    assert (batch["input_ids"] == image_token_id).sum(dim=1).tolist() == image_tokens

    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    assert torch.isfinite(loss)
    vision_grads = [p.grad for n, p in model.named_parameters() if "vision" in n or "visual" in n]
    assert any(g is not None and g.abs().sum() > 0 for g in vision_grads)

    generated = model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert generated.shape[1] == batch["input_ids"].shape[1] + 3


def test_the_vllm_variant_has_head_size_32_and_a_video_processor_config():
    """vLLM's CPU attention refuses head size 16, and vLLM loads Qwen's full processor."""
    folder = Path(resolve("tiny-qwen2.5-vl-head32"))
    config = AutoConfig.from_pretrained(folder)
    text = config.text_config
    assert text.hidden_size // text.num_attention_heads == 32
    assert config.vision_config.hidden_size // config.vision_config.num_heads == 32
    video = json.loads((folder / "video_preprocessor_config.json").read_text())
    image = json.loads((folder / "processor_config.json").read_text())["image_processor"]
    assert video["patch_size"] == image["patch_size"] and video["size"] == image["size"]
