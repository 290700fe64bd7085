"""Native bf16 detection from /proc/cpuinfo flags."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from model_zoo.hardware import cpu_has_native_bf16, cpu_model


def test_native_bf16_needs_an_avx512_bf16_or_amx_flag(tmp_path, monkeypatch):
    from model_zoo import hardware

    monkeypatch.setattr(hardware, "torch_uses_avx512", lambda: True)  # the flags alone here
    avx2 = tmp_path / "avx2"
    avx2.write_text("flags\t\t: fpu sse avx2 avx512f\n")
    zen4 = tmp_path / "zen4"
    zen4.write_text("flags\t\t: fpu avx2 avx512f avx512_bf16\n")
    sapphire = tmp_path / "spr"
    sapphire.write_text("flags\t\t: avx2 amx_bf16 amx_tile\n")
    assert not cpu_has_native_bf16(str(avx2))
    assert cpu_has_native_bf16(str(zen4)) and cpu_has_native_bf16(str(sapphire))
    assert not cpu_has_native_bf16(str(tmp_path / "missing"))


def test_torch_held_to_avx2_counts_as_a_cpu_without_native_bf16(tmp_path):
    """``ATEN_CPU_CAPABILITY=avx2`` emulates an AVX2-only machine: bf16 is then not native."""
    zen4 = tmp_path / "zen4"
    zen4.write_text("flags\t\t: fpu avx2 avx512f avx512_bf16\n")
    probe = (
        "from model_zoo.hardware import cpu_has_native_bf16, torch_uses_avx512;"
        f"print(torch_uses_avx512(), cpu_has_native_bf16({str(zen4)!r}))"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_cpu_bf16_turns_off_only_for_cpu_runs_without_native_bf16(monkeypatch, capsys):
    from model_zoo import hardware

    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    assert hardware.cpu_bf16(True, use_cpu=True) is False
    assert "note: bf16 off" in capsys.readouterr().out
    assert hardware.cpu_bf16(True, use_cpu=False) is True  # a GPU run keeps it
    assert hardware.cpu_bf16(False, use_cpu=True) is False
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)
    assert hardware.cpu_bf16(True, use_cpu=True) is True
    assert capsys.readouterr().out == ""


def test_both_configs_apply_the_cpu_bf16_rule(monkeypatch, tmp_path):
    from eager_llm.training.config import load_config as load_eager
    from model_zoo import hardware
    from observe_r1.training.config import load_config as load_observe

    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    configs = Path(__file__).parents[2] / "configs"
    observe = load_observe(
        configs / "observe_r1" / "smol-cpu.yaml", ["bf16=true", f"output_dir={tmp_path}/o"]
    )
    assert observe.bf16 is False
    eager = load_eager(
        configs / "eager_llm" / "smol-ml100k.yaml", "train", output_dir=str(tmp_path)
    )
    assert eager.bf16 is False


def test_auto_device_is_cuda_only_where_there_is_one():
    from model_zoo.hardware import resolve_device

    assert resolve_device("auto", cuda_available=True) == "cuda"
    assert resolve_device("auto", cuda_available=False) == "cpu"
    assert resolve_device("cpu", cuda_available=True) == "cpu"
    assert resolve_device("cuda", cuda_available=True) == "cuda"
    for bad, available in (("cuda", False), ("gpu", True), ("cuda:0", True)):
        with pytest.raises(ValueError, match="auto|cuda"):
            resolve_device(bad, cuda_available=available)


def test_auto_weights_dtype_is_bfloat16_only_on_a_gpu_with_bf16_units():
    from model_zoo.hardware import weights_dtype

    assert weights_dtype("auto", "cuda", bf16_native=True) == "bfloat16"
    assert weights_dtype("auto", "cuda", bf16_native=False) == "float32"
    assert weights_dtype("auto", "cpu", bf16_native=True) == "float32"  # the CPU as before
    assert weights_dtype("float32", "cuda", bf16_native=True) == "float32"
    assert weights_dtype("bfloat16", "cpu", bf16_native=False) == "bfloat16"


def test_inference_precision_is_bf16_on_a_gpu_with_bf16_units(monkeypatch):
    from model_zoo import hardware

    monkeypatch.setattr(hardware, "cuda_has_bf16", lambda: True)
    assert hardware.inference_precision("cuda") == "bf16"
    monkeypatch.setattr(hardware, "cuda_has_bf16", lambda: False)
    assert hardware.inference_precision("cuda") == "fp32"
    assert hardware.inference_precision("mps") == "fp32"


def test_cpu_model_reads_the_model_name_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    name = "AMD EPYC 9R14 96-Core Processor"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: {name}\nflags\t: avx2\n")
    assert cpu_model(str(cpuinfo)) == name
    assert cpu_model(str(tmp_path / "missing"))  # a fallback, never empty
