"""Bounded config reading (issue 31, items 4, 6): an alias bomb, a self-referencing alias,
deep nesting, an oversized file, /dev/zero and a FIFO each fail fast with one error that
names the file; the CLIs of both tools do so too, under a subprocess time limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from yaml_config import ConfigError, parse_override, read_mapping
from yaml_config.bounds import MAX_CONFIG_BYTES, MAX_CONFIG_NODES

ROOT = Path(__file__).parents[2]


def alias_bomb() -> str:
    """Nine levels of nine aliases each: 9^9 (387 million) values from about 500 bytes."""
    text = "model: tiny-llama\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for level in range(1, 9):
        text += f"x{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]\n"
    return text


@pytest.fixture
def configs(tmp_path) -> dict[str, Path]:
    files = {
        "bomb": alias_bomb(),
        "self": "model: tiny-llama\nloop: &a [1, *a]\n",
        "deep": "a: " + "[" * 50_000 + "]" * 50_000 + "\n",
        "big": "# " + "x" * MAX_CONFIG_BYTES + "\n",
    }
    paths = {}
    for name, text in files.items():
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(text)
    paths["fifo"] = tmp_path / "fifo.yaml"
    os.mkfifo(paths["fifo"])
    paths["zero"] = Path("/dev/zero")
    return paths


EXPECTED = {
    "bomb": f"bomb.yaml:7: aliases expand to more than {MAX_CONFIG_NODES} values",
    "self": "self.yaml:2: an alias refers to the node that contains it",
    "deep": "deep.yaml: nested too deeply for a config",
    "big": f"big.yaml: is larger than the cap of {MAX_CONFIG_BYTES} bytes",
    "fifo": "fifo.yaml: is not a regular file",
    "zero": "/dev/zero: is not a regular file",
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_hostile_config_is_one_config_error(configs, name):
    with pytest.raises(ConfigError) as raised:
        read_mapping(configs[name])
    assert EXPECTED[name] in str(raised.value) and len(str(raised.value)) < 300


def test_aliases_within_the_cap_still_expand(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("base: &b {r: 8, alpha: 16}\nlora: *b\nlist: &l [1, 2]\nmore: [*l, *l]\n")
    assert read_mapping(path)["lora"] == {"r": 8, "alpha": 16}
    assert read_mapping(path)["more"] == [[1, 2], [1, 2]]


def test_an_override_is_bounded_too():
    with pytest.raises(ConfigError, match="aliases expand to more than"):
        parse_override("x=" + "{" + alias_bomb().replace("\n", ", ") + "}")


CLI_SCRIPT = """
import json, sys
from typer.testing import CliRunner
from eager_llm.cli import app as eager
from observe_r1.cli import app as observe
results = {}
for name, path in json.loads(sys.argv[1]).items():
    for tool, app in (("observe", observe), ("eager", eager)):
        result = CliRunner().invoke(app, ["train", "--config", path])
        results[f"{tool}/{name}"] = [result.exit_code, result.stderr]
print(json.dumps(results))
"""


def test_both_train_verbs_refuse_hostile_configs_fast(configs):
    chosen = {name: str(configs[name]) for name in ("bomb", "self", "fifo", "zero")}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CLI_SCRIPT, json.dumps(chosen)],
        capture_output=True,
        text=True,
        timeout=300,  # a hang (FIFO, alias bomb) fails here instead of blocking the suite
        cwd=ROOT,
        env=env,
        check=True,
    )
    results = json.loads(done.stdout.splitlines()[-1])
    for case, (code, stderr) in results.items():
        lines = stderr.splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (case, stderr)
        assert EXPECTED[case.split("/")[1]] in lines[0], (case, lines[0])
