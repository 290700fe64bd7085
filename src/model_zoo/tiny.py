"""Tiny random models of the real architectures, built from config for fast tests.

Each builder writes a complete Hugging Face folder (weights, config, tokenizer or
processor, chat template) that the ``Auto*`` classes and TRL load like any hub model.
Weights are random but seeded, so every machine builds the same model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (
    BitImageProcessorPil,
    Dinov2Config,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2VLImageProcessorPil,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from model_zoo.processors import ImageOnlyQwen2_5_VLProcessor, save_processor
from model_zoo.tiny_tokenizer import (
    ENDOFTEXT,
    IM_END,
    LLAVA_CHAT_TEMPLATE,
    LLAVA_IMAGE,
    QWEN_CHAT_TEMPLATE,
    QWEN_VISION,
    build_tiny_qwen2_tokenizer,
    build_tiny_tokenizer,
)

SEED = 0
TEXT_DIMS = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
}
TINY_IMAGE_PX = 56  # 4x4 patches of 14 px
VIDEO_KEYS_FROM_IMAGE = (  # what Qwen2VLVideoProcessor shares with the image processor
    "do_convert_rgb", "do_normalize", "do_rescale", "do_resize", "image_mean", "image_std",
    "merge_size", "patch_size", "resample", "rescale_factor", "size", "temporal_patch_size",
)  # fmt: skip


def _token_ids(tokenizer) -> dict[str, int]:
    return {
        "bos_token_id": tokenizer.convert_tokens_to_ids("<|im_start|>"),
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def _save(model, processor_or_tokenizer, out: Path) -> None:
    model.generation_config.pad_token_id = model.config.get_text_config().pad_token_id
    model.generation_config.eos_token_id = model.config.get_text_config().eos_token_id
    model.save_pretrained(out)
    if hasattr(processor_or_tokenizer, "image_processor"):
        save_processor(processor_or_tokenizer, out)
    else:
        processor_or_tokenizer.save_pretrained(out)


def build_tiny_llama(out: Path) -> None:
    """``LlamaForCausalLM``: 2 layers, hidden 64, ~100k parameters, ChatML template."""
    tokenizer = build_tiny_tokenizer()
    tokenizer.chat_template = LLAVA_CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(tokenizer), **TEXT_DIMS, **_token_ids(tokenizer))
    torch.manual_seed(SEED)
    _save(LlamaForCausalLM(config), tokenizer, out)


def build_tiny_qwen2(out: Path) -> None:
    """``Qwen2ForCausalLM``: 2 layers, hidden 64, as Qwen2 / Qwen2.5 (base) configure it:
    tied input and output embeddings, biases on the q/k/v projections, and BOS = EOS = pad
    = ``<|endoftext|>`` (a token its tokenizer never adds)."""
    tokenizer = build_tiny_qwen2_tokenizer()
    end = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        **TEXT_DIMS,
        tie_word_embeddings=True,
        bos_token_id=end,
        eos_token_id=end,
        pad_token_id=end,
    )
    torch.manual_seed(SEED)
    _save(Qwen2ForCausalLM(config), tokenizer, out)


def build_tiny_qwen3(out: Path) -> None:
    """``Qwen3ForCausalLM``: 2 layers, hidden 64, as Qwen3-0.6B / 1.7B / 4B configure it:
    tied input and output embeddings (8B and larger untie them), RMSNorm on each head's
    queries and keys, no attention biases, and a head size not tied to hidden / heads (here
    32, so the q projection is twice the hidden size, as in 0.6B). Its tokenizer is Qwen2's
    as those post-trained models ship it: no BOS, EOS = ``<|im_end|>``, pad =
    ``<|endoftext|>`` (= the config's BOS, never added)."""
    tokenizer = build_tiny_qwen2_tokenizer(eos_token=IM_END)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        **TEXT_DIMS,
        head_dim=32,
        attention_bias=False,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids(ENDOFTEXT),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(SEED)
    _save(Qwen3ForCausalLM(config), tokenizer, out)


def build_tiny_llava(out: Path) -> None:
    """``LlavaForConditionalGeneration``: tiny DINOv2 tower + 2-layer MLP + tiny Llama,
    the same layout as the offline default VLM; 56 px images -> 16 image tokens."""
    tokenizer = build_tiny_tokenizer([LLAVA_IMAGE])
    vision = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=14,
        image_size=TINY_IMAGE_PX,
    )
    text = LlamaConfig(vocab_size=len(tokenizer), **TEXT_DIMS, **_token_ids(tokenizer))
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids(LLAVA_IMAGE),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    image_processor = BitImageProcessorPil(
        size={"shortest_edge": TINY_IMAGE_PX},
        crop_size={"height": TINY_IMAGE_PX, "width": TINY_IMAGE_PX},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT_TEMPLATE,
    )
    torch.manual_seed(SEED)
    _save(LlavaForConditionalGeneration(config), processor, out)


def build_tiny_qwen2_5_vl(out: Path, head_dim: int = 16) -> None:
    """``Qwen2_5_VLForConditionalGeneration`` with Qwen's vision specials and M-RoPE;
    a 56 px image -> 16 patches -> 4 image tokens after the 2x2 merge. ``head_dim``: of the
    text and the vision attention."""
    tokenizer = build_tiny_tokenizer(QWEN_VISION)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_VISION}
    heads = TEXT_DIMS["hidden_size"] // head_dim
    rotary_half = head_dim // 2  # M-RoPE: temporal/height/width sections of it
    text = {
        "vocab_size": len(tokenizer),
        **TEXT_DIMS,
        "num_attention_heads": heads,
        "num_key_value_heads": max(heads // 2, 1),
        **_token_ids(tokenizer),
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": [rotary_half // 4, *2 * [(rotary_half - rotary_half // 4) // 2]],
        },
    }
    assert sum(text["rope_parameters"]["mrope_section"]) == rotary_half
    vision = {
        "depth": 2,
        "hidden_size": 2 * head_dim,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": TEXT_DIMS["hidden_size"],
        "fullatt_block_indexes": [1],
        "window_size": 56,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    }
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=TINY_IMAGE_PX * TINY_IMAGE_PX,
        max_pixels=2 * TINY_IMAGE_PX * TINY_IMAGE_PX,
        patch_size=14,
        merge_size=2,
        temporal_patch_size=2,
    )
    processor = ImageOnlyQwen2_5_VLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=QWEN_CHAT_TEMPLATE
    )
    torch.manual_seed(SEED)
    _save(Qwen2_5_VLForConditionalGeneration(config), processor, out)


def build_tiny_qwen2_5_vl_head32(out: Path) -> None:
    """`build_tiny_qwen2_5_vl` with head size 32 (2 text heads), the least vLLM's CPU
    attention takes, and a video processor config beside the image one: vLLM loads Qwen's
    full processor (images and video; the project's loader takes the image part alone)."""
    build_tiny_qwen2_5_vl(out, head_dim=32)
    image = json.loads((out / "processor_config.json").read_text())["image_processor"]
    video = {key: image[key] for key in VIDEO_KEYS_FROM_IMAGE}
    video |= {"video_processor_type": "Qwen2VLVideoProcessor", "do_sample_frames": False}
    (out / "video_preprocessor_config.json").write_text(json.dumps(video, indent=2))
