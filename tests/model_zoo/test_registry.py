from dataclasses import replace
from pathlib import Path

import pytest

from model_zoo import ZOO, cache, resolve
from model_zoo.registry import status


def test_unknown_names_and_paths_pass_through(tmp_path):
    assert resolve("Qwen/Qwen2.5-VL-3B-Instruct") == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert resolve(str(tmp_path)) == str(tmp_path)


def test_zoo_lists_the_documented_models():
    expected = {"smollm2-135m-instruct", "minilm-l6-v2", "dinov2-small"}
    expected |= {"tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-llava", "tiny-qwen2.5-vl"}
    assert expected <= set(ZOO)


def test_build_is_cached_and_reused(isolated_cache, monkeypatch):
    folder = Path(resolve("tiny-llama"))
    assert folder.parent == isolated_cache
    assert (folder / cache.MANIFEST).is_file() and (folder / "model.safetensors").is_file()
    assert status("tiny-llama") == "cached"

    def must_not_build(out):
        raise AssertionError("a valid cached model was rebuilt")

    monkeypatch.setitem(ZOO, "tiny-llama", replace(ZOO["tiny-llama"], build=must_not_build))
    assert resolve("tiny-llama") == str(folder)


@pytest.mark.parametrize(
    "damage",
    [
        lambda f: (f / "model.safetensors").write_bytes(b"truncated"),
        lambda f: (f / "config.json").unlink(),
        lambda f: (f / cache.MANIFEST).write_text("{not json"),
        lambda f: (f / "tokenizer.json").write_text(
            (f / "tokenizer.json").read_text().replace("im_end", "im_END")
        ),
    ],
    ids=["truncated-weights", "missing-config", "broken-manifest", "same-size-edit"],
)
def test_corrupted_cache_is_detected_and_rebuilt(isolated_cache, damage):
    folder = Path(resolve("tiny-llama"))
    original = (folder / "model.safetensors").read_bytes()
    damage(folder)
    assert not cache.is_intact(folder)
    assert status("tiny-llama") == "not built"
    assert Path(resolve("tiny-llama")) == folder
    assert cache.is_intact(folder)
    assert (folder / "model.safetensors").read_bytes() == original  # seeded: same weights


def test_failed_build_publishes_nothing(isolated_cache):
    def crash(out: Path):
        (out / "partial.bin").write_bytes(b"x")
        raise RuntimeError("conversion died")

    with pytest.raises(RuntimeError, match="conversion died"):
        cache.build_cached("broken", crash)
    assert not (isolated_cache / "broken").exists()
    assert [p.name for p in isolated_cache.iterdir()] == []


def test_large_file_fingerprint_sees_tail_changes(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (9 << 20))
    before = cache.fingerprint(big)
    with big.open("r+b") as handle:
        handle.seek(-1, 2)
        handle.write(b"\1")
    assert cache.fingerprint(big) != before
