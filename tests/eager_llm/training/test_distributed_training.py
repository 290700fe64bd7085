"""``accelerate launch`` (the DDP config) of ``eager-llm train`` and ``anneal`` on two CPU
processes (gloo), each with half the batch, logs the loss curve of one process at the same
global batch (slow: two fresh processes per stage)."""

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
from tests.eager_llm.training.toy import CONFIG, toy_index

REPO = Path(__file__).parents[3]
DDP = REPO / "configs" / "accelerate" / "ddp.yaml"  # its GPU settings overridden for 2 CPUs
CURVE = ("step", "samples", "loss", "lm_loss", "gct_sem", "gct_beh", "learning_rate")
# Stage 1 with length-grouped batches, stage 2 with the default random ones; no LoRA
# dropout (each process would draw its own masks); 3 annealing steps stay inside the first
# epoch of its 14 samples (accelerate completes a last short batch with repeated samples).
STAGES = {
    "train": ["--set", "train_sampling_strategy=group_by_length"],
    "anneal": ["--set", "lora={r: 8, alpha: 32, dropout: 0.0}", "--max-steps", "3"],
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def two_processes(*args) -> None:
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    command = [
        accelerate, "launch", "--config_file", DDP, "--num_processes", "2",
        "--mixed_precision", "no", "--main_process_port", str(free_port()),
        "-m", "eager_llm.cli", *map(str, args),
    ]  # fmt: skip
    path = os.pathsep.join([str(REPO / "src"), str(REPO)])  # this checkout's code
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env=env, timeout=1200
    )
    assert result.returncode == 0, result.stderr[-3000:]


def one_process(*args) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


def curve(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{key: record[key] for key in CURVE} for record in records]


def assert_same_curve(two: list[dict], one: list[dict]) -> None:
    assert [r["step"] for r in two] == [r["step"] for r in one]
    for two_record, one_record in zip(two, one, strict=True):
        assert two_record.keys() == one_record.keys()
        for key, value in one_record.items():
            if value is None:
                assert two_record[key] is None, key
            else:
                assert two_record[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key


@pytest.mark.slow
def test_two_processes_train_both_stages_along_the_curve_of_one(tmp_path):
    toy_index(tmp_path)
    common = ["--config", CONFIG, "--index", tmp_path / "index"]
    half = ["--set", "per_device_train_batch_size=2"]  # tiny.yaml: 4 per process
    stage1 = tmp_path / "one-stage1"
    one_process("train", *common, "--output-dir", stage1, *STAGES["train"])
    two_processes(
        "train", *common, "--output-dir", tmp_path / "two-stage1", *STAGES["train"], *half
    )
    one = curve(stage1)
    assert one[-1]["gct_sem"] is not None  # GCT ran
    assert_same_curve(curve(tmp_path / "two-stage1"), one)

    common += ["--from", stage1]
    one_process("anneal", *common, "--output-dir", tmp_path / "one-anneal", *STAGES["anneal"])
    two_processes(
        "anneal", *common, "--output-dir", tmp_path / "two-anneal", *STAGES["anneal"], *half
    )
    one = curve(tmp_path / "one-anneal")
    assert len(one) == 3
    assert_same_curve(curve(tmp_path / "two-anneal"), one)
