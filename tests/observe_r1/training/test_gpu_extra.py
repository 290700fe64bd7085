"""The `gpu` extra: a vLLM that the installed TRL supports, and that pip resolves to.

The resolver test runs pip as a plain package-index user would (no local pip
configuration, no local wheel folders) in dry-run mode: it downloads package metadata from
the index, installs nothing, and takes about a minute. It is skipped, saying so, when the
package index cannot be reached.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).parents[3]
PIP_SETTINGS = ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _gpu_extra() -> dict[str, Requirement]:
    return {r.name: r for r in map(Requirement, _project()["optional-dependencies"]["gpu"])}


def _trl_extra(name: str, package: str) -> Requirement:
    for line in requires("trl"):
        requirement = Requirement(line)
        if requirement.name == package and requirement.marker.evaluate({"extra": name}):
            return requirement
    raise AssertionError(f"trl has no {package} in its {name!r} extra")


def _pinned(requirement: Requirement) -> Version:
    (spec,) = requirement.specifier
    assert spec.operator == "==", f"{requirement} is not pinned to one version"
    return Version(spec.version)


def test_gpu_extra_pins_one_vllm_that_trl_supports():
    ours = _gpu_extra()
    vllm = _pinned(ours["vllm"])
    assert _trl_extra("vllm", "vllm").specifier.contains(vllm)
    assert ours["deepspeed"].specifier == _trl_extra("deepspeed", "deepspeed").specifier


def _index_reachable(host: str = "pypi.org") -> bool:
    try:
        socket.create_connection((host, 443), timeout=5).close()
    except OSError:
        return False
    return True


def test_the_gpu_extra_resolves_for_a_plain_index_user(tmp_path):
    if not _index_reachable():
        pytest.skip("pypi.org cannot be reached: the resolver dry run needs the package index")
    project = tmp_path / "project"
    (project / "src" / "observe_r1").mkdir(parents=True)
    (project / "src" / "observe_r1" / "__init__.py").write_text("")
    shutil.copy(ROOT / "pyproject.toml", project)
    shutil.copy(ROOT / "README.md", project)
    environment = {key: value for key, value in os.environ.items() if key not in PIP_SETTINGS}
    environment["PIP_CONFIG_FILE"] = os.devnull  # no user, site or machine pip.conf
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
    command += ["--quiet", "--report", str(report), ".[gpu]"]
    done = subprocess.run(
        command, cwd=project, env=environment, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    chosen = {
        item["metadata"]["name"].lower(): Version(item["metadata"]["version"])
        for item in json.loads(report.read_text())["install"]
    }
    assert chosen["vllm"] == _pinned(_gpu_extra()["vllm"])
    pins = {r.name: r for r in map(Requirement, _project()["dependencies"])}
    for name in ("torch", "transformers", "trl"):
        assert pins[name].specifier.contains(chosen[name]), (name, chosen[name])
    assert _gpu_extra()["deepspeed"].specifier.contains(chosen["deepspeed"])
