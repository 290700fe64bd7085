"""``accelerate launch`` of ``eager-llm eval`` on two CPU processes (gloo) writes the
eval.json of one process: same rankings, same metrics (slow: two fresh processes)."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eager_llm.cli import app
from tests.eager_llm.training.toy import CONFIG, write_dataset

REPO = Path(__file__).parents[2]
TIMING = ("seconds", "processes")  # what may differ between the two reports


def ok(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def without_timing(value):
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


@pytest.mark.slow
def test_two_processes_write_the_report_of_one(tmp_path):
    data = write_dataset(tmp_path / "data")
    ok("index", "--dataset", data, "--out", tmp_path / "index", "--k", 4, "--k-core", 1,
       "--epochs", 1, "--cache-dir", tmp_path / "cache")  # fmt: skip
    run = tmp_path / "run"
    ok("train", "--config", CONFIG, "--index", tmp_path / "index", "--output-dir", run,
       "--max-steps", 1)  # fmt: skip
    options = ["--beams", "5", "--batch-size", "2", "--instructions", "0,1"]
    ok("eval", "--run", run, *options)
    one = json.loads((run / "eval.json").read_text())
    shutil.move(run / "eval.json", tmp_path / "one.json")

    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    command = [
        accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
        str(free_port()), "-m", "eager_llm.cli", "eval", "--run", str(run), *options,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    two = json.loads((run / "eval.json").read_text())
    assert two["processes"] == 2 and one["processes"] == 1
    assert [r["ranks"] for r in two["results"]] == [r["ranks"] for r in one["results"]]
    assert without_timing(two) == without_timing(one)
    assert result.stdout.count("| EAGER-LLM (run) |") == 1  # only the first process prints
