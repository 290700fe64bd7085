"""Resume that restores the weights of models whose saved key names differ from their own.

transformers 5 writes checkpoints of models with a conversion mapping (LLaVA, Qwen2.5-VL:
``model.multi_modal_projector.*`` is saved as ``multi_modal_projector.*``) in the legacy
layout, but ``Trainer._load_from_checkpoint`` reads ``model.safetensors`` back with a plain
``load_state_dict(strict=False)``: no key matches, nothing loads, and a resumed run silently
continues from the initial weights. :class:`RenamedWeightsResume` loads them by name.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file
from transformers.modeling_utils import revert_weight_conversion

SAFE_WEIGHTS = "model.safetensors"
SAFE_WEIGHTS_INDEX = "model.safetensors.index.json"  # shards, above save_pretrained's 50 GB


def saved_to_own_names(model) -> dict[str, str]:
    """{name in a saved checkpoint: name in ``model.state_dict()``}."""
    names = {}
    for own, tensor in model.state_dict().items():
        (saved,) = revert_weight_conversion(model, {own: tensor})
        names[saved] = own
    return names


def has_saved_weights(checkpoint: str | Path) -> bool:
    folder = Path(checkpoint)
    return (folder / SAFE_WEIGHTS).is_file() or (folder / SAFE_WEIGHTS_INDEX).is_file()


def saved_tensors(checkpoint: str | Path) -> dict:
    """Every tensor of a safetensors checkpoint, one file or sharded, by its saved name."""
    folder = Path(checkpoint)
    index = folder / SAFE_WEIGHTS_INDEX
    if not index.is_file():
        return load_file(folder / SAFE_WEIGHTS, device="cpu")
    shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    return {name: t for shard in shards for name, t in load_file(folder / shard).items()}


def load_saved_weights(model, checkpoint: str | Path) -> None:
    """Load the checkpoint's full-model weights into ``model``; every saved tensor must land
    (tied weights saved once are the only model tensors allowed to be absent)."""
    saved = saved_tensors(checkpoint)
    names = saved_to_own_names(model)
    unknown = sorted(set(saved) - set(names))
    if unknown:
        raise KeyError(f"{checkpoint}: weights the model does not have: {unknown[:3]}")
    model.load_state_dict({names[key]: tensor for key, tensor in saved.items()}, strict=False)


class RenamedWeightsResume:
    """Trainer mixin: after the stock resume, load full-model weights by their saved names."""

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        if has_saved_weights(resume_from_checkpoint):
            load_saved_weights(model or self.model, resume_from_checkpoint)
