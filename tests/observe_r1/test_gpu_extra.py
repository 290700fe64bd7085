"""The `gpu` extra installs the vLLM and DeepSpeed versions the installed TRL supports."""

from importlib.metadata import requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"


def _trl_extra(name: str, package: str) -> Requirement:
    for line in requires("trl"):
        requirement = Requirement(line)
        if requirement.name == package and requirement.marker.evaluate({"extra": name}):
            return requirement
    raise AssertionError(f"trl has no {package} in its {name!r} extra")


def test_gpu_extra_pins_what_trl_supports():
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    ours = {r.name: r for r in map(Requirement, extras["gpu"])}
    assert ours["vllm"].specifier == _trl_extra("vllm", "vllm").specifier  # >=0.22.0,<=0.31.0
    assert ours["deepspeed"].specifier == _trl_extra("deepspeed", "deepspeed").specifier
    assert "0.31.0" in ours["vllm"].specifier and "0.32.0" not in ours["vllm"].specifier
