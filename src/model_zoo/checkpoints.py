"""Resume that restores the weights of models whose saved key names differ from their own.

transformers 5 writes checkpoints of models with a conversion mapping (LLaVA, Qwen2.5-VL:
``model.multi_modal_projector.*`` is saved as ``multi_modal_projector.*``) in the legacy
layout, but ``Trainer._load_from_checkpoint`` reads ``model.safetensors`` back with a plain
``load_state_dict(strict=False)``: no key matches, nothing loads, and a resumed run silently
continues from the initial weights. :class:`RenamedWeightsResume` loads them by name.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file
from transformers.modeling_utils import revert_weight_conversion

SAFE_WEIGHTS = "model.safetensors"


def saved_to_own_names(model) -> dict[str, str]:
    """{name in a saved checkpoint: name in ``model.state_dict()``}."""
    names = {}
    for own, tensor in model.state_dict().items():
        (saved,) = revert_weight_conversion(model, {own: tensor})
        names[saved] = own
    return names


def load_saved_weights(model, checkpoint: str | Path) -> None:
    """Load ``checkpoint/model.safetensors`` into ``model``; every saved tensor must land
    (tied weights saved once are the only model tensors allowed to be absent)."""
    saved = load_file(Path(checkpoint) / SAFE_WEIGHTS, device="cpu")
    names = saved_to_own_names(model)
    unknown = sorted(set(saved) - set(names))
    if unknown:
        raise KeyError(f"{checkpoint}: weights the model does not have: {unknown[:3]}")
    model.load_state_dict({names[key]: tensor for key, tensor in saved.items()}, strict=False)


class RenamedWeightsResume:
    """Trainer mixin: after the stock resume, load full-model weights by their saved names."""

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        if (Path(resume_from_checkpoint) / SAFE_WEIGHTS).is_file():
            load_saved_weights(model or self.model, resume_from_checkpoint)
