"""Native bf16 detection from /proc/cpuinfo flags."""

from model_zoo.hardware import cpu_has_native_bf16


def test_native_bf16_needs_an_avx512_bf16_or_amx_flag(tmp_path):
    avx2 = tmp_path / "avx2"
    avx2.write_text("flags\t\t: fpu sse avx2 avx512f\n")
    zen4 = tmp_path / "zen4"
    zen4.write_text("flags\t\t: fpu avx2 avx512f avx512_bf16\n")
    sapphire = tmp_path / "spr"
    sapphire.write_text("flags\t\t: avx2 amx_bf16 amx_tile\n")
    assert not cpu_has_native_bf16(str(avx2))
    assert cpu_has_native_bf16(str(zen4)) and cpu_has_native_bf16(str(sapphire))
    assert not cpu_has_native_bf16(str(tmp_path / "missing"))
