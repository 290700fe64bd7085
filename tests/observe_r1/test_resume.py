"""A run killed with SIGKILL and resumed consumes exactly the uninterrupted prompt sequence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.observe_r1.test_trainer import TINY, write_rows

STEPS = 4


def _command(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "observe_r1.cli", "train", "--config", str(TINY),
        "--output-dir", str(out), "--max-steps", str(STEPS),
        "--set", f"train_file={data}", "--set", "max_completion_length=8", *extra,
    ]  # fmt: skip


def _consumed(out: Path) -> list[tuple[int, str]]:
    lines = (out / "rollouts.jsonl").read_text().splitlines()
    return [(r["step"], r["row_id"]) for r in map(json.loads, lines)]


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    data = write_rows(tmp_path, n=3)  # 4 steps x 2 prompts: wraps into a second epoch
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    subprocess.run(_command(data, reference), check=True, capture_output=True)

    process = subprocess.Popen(
        _command(data, interrupted), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state = interrupted / "checkpoint-2" / "trainer_state.json"
    deadline = time.monotonic() + 300
    while not state.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert state.is_file(), "the run ended before its second checkpoint"
    assert not (interrupted / "final").exists()

    subprocess.run([*_command(data, interrupted), "--resume"], check=True, capture_output=True)
    assert _consumed(interrupted) == _consumed(reference)
    assert len(_consumed(reference)) == STEPS * 2 * 4
    steps = [json.loads(line)["step"] for line in (interrupted / "metrics.jsonl").open()]
    assert steps == list(range(1, STEPS + 1))
