"""What the CPU can do fast: bf16 matrix work needs native bf16 units (AVX512-BF16 or AMX).

Without them PyTorch emulates bf16 matmuls, several times slower than fp32 (measured on an
AVX2-only AMD EPYC: a 1176 x 576 x 1536 matmul 0.055 s fp32, 0.43 s bf16, 0.30 s autocast),
so bf16 autocast on such a CPU costs speed instead of saving it.

A CPU with the flags still counts as without them when torch is held below AVX512
(``ATEN_CPU_CAPABILITY=avx2``, with ``ONEDNN_MAX_CPU_ISA=AVX2`` for oneDNN's matmuls): that
is how an AVX2-only machine is emulated on a newer one (CONTRIBUTING.md).
"""

from __future__ import annotations

import platform
from functools import cache
from pathlib import Path

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
PRECISIONS = ("fp32", "bf16")  # how a model generates: fp32, or fp32 weights under bf16 autocast
DEVICES = ("auto", "cpu", "cuda")  # where an evaluation runs; auto: cuda when there is one


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name as ``cpuinfo`` (Linux) gives it, for the pages that time things;
    the platform's processor string, or ``unknown CPU``, where it cannot be read."""
    try:
        lines = Path(cpuinfo).read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


@cache
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether ``cpuinfo`` (Linux) lists a native bf16 flag and torch may use AVX512 kernels;
    False where the file is unreadable."""
    try:
        flags = Path(cpuinfo).read_text().split()
    except OSError:
        return False
    return any(flag in flags for flag in NATIVE_BF16_FLAGS) and torch_uses_avx512()


def torch_uses_avx512() -> bool:
    """Whether torch's CPU kernels run at AVX512 or above (not held to AVX2 by
    ``ATEN_CPU_CAPABILITY`` or by the CPU)."""
    import torch

    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def cpu_bf16(requested: bool, use_cpu: bool) -> bool:
    """The ``bf16`` a config gets: as ``requested``, except for a CPU run on a CPU without
    native bf16 units, where bf16 autocast would be slower than fp32: then False, with a
    printed note saying so."""
    if requested and use_cpu and not cpu_has_native_bf16():
        print(
            "note: bf16 off: this CPU has no native bf16 units (avx512_bf16 / amx_bf16), "
            "where bf16 autocast runs slower than fp32; training in fp32"
        )
        return False
    return requested


def cuda_has_bf16() -> bool:
    """Whether the current CUDA device computes in bf16 natively (Ampere and newer)."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


def inference_precision(device_type: str) -> str:
    """``"bf16"`` (fp32 weights, bf16 autocast) where bf16 pays: a GPU with bf16 units, or a
    CPU with native bf16 units; ``"fp32"`` elsewhere. Generation records it with what it
    made."""
    native = {"cuda": cuda_has_bf16, "cpu": cpu_has_native_bf16}.get(device_type)
    return "bf16" if native and native() else "fp32"


def resolve_device(requested: str, cuda_available: bool) -> str:
    """``"cpu"`` or ``"cuda"``: as asked, ``"auto"``: cuda when ``cuda_available``; raises
    ValueError naming the choices for anything else, and for cuda without a GPU."""
    if requested not in DEVICES:
        raise ValueError(f"must be {', '.join(DEVICES)}, got {requested!r}")
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested == "cuda" and not cuda_available:
        raise ValueError("cuda: no CUDA device is available here (use auto or cpu)")
    return requested


def weights_dtype(requested: str, device_type: str, bf16_native: bool) -> str:
    """The weights' dtype of a ranking model: ``"float32"`` or ``"bfloat16"`` as asked,
    ``"auto"``: bfloat16 on a GPU with bf16 units (``bf16_native``), float32 elsewhere (a
    CPU keeps float32: what it always ranked in)."""
    if requested == "auto":
        return "bfloat16" if device_type == "cuda" and bf16_native else "float32"
    return requested


def resolve_precision(requested: str, device_type: str) -> str:
    """``"fp32"`` or ``"bf16"`` as asked, ``"auto"``: `inference_precision`; raises
    ValueError naming the choices for anything else."""
    if requested == "auto":
        return inference_precision(device_type)
    if requested not in PRECISIONS:
        raise ValueError(f"must be auto, fp32 or bf16, got {requested!r}")
    return requested
