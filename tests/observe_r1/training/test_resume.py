"""A run killed with SIGKILL and resumed continues exactly as an uninterrupted run: the same
prompts at the same steps, the same completions, rewards and advantages, also when it was
killed inside a generation round (steps_per_generation / num_iterations > 1)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.observe_r1.training.test_trainer import TINY, write_rows


def _command(data: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "observe_r1.cli", "train", "--config", str(TINY),
        "--output-dir", str(out), "--max-steps", str(steps),
        "--set", f"train_file={data}", "--set", "max_completion_length=8", *extra,
    ]  # fmt: skip


def _rollouts(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "rollouts.jsonl").read_text().splitlines()]


def _kill_after(command: list[str], state: Path) -> None:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not state.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert state.is_file(), f"the run ended before writing {state}"


@pytest.mark.parametrize(
    ("rows", "steps", "round_settings", "first_steps"),
    [
        # 4 steps x 2 prompts over 3 rows: wraps into a second epoch; a round per step
        (3, 4, [], [1, 2, 3, 4]),
        # rounds of 4 prompts x 4 used over 2 steps, twice (steps 1-4, 5-8); killed at step 2
        (8, 8, ["steps_per_generation=2", "num_iterations=2"], [1, 5]),
    ],
    ids=["round-per-step", "inside-a-round"],
)
def test_sigkill_then_resume_matches_an_uninterrupted_run(
    tmp_path, rows, steps, round_settings, first_steps
):
    data = write_rows(tmp_path, n=rows)
    extra = [item for setting in round_settings for item in ("--set", setting)]
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    subprocess.run(_command(data, reference, steps, *extra), check=True, capture_output=True)

    command = _command(data, interrupted, steps, *extra)
    _kill_after(command, interrupted / "checkpoint-2" / "trainer_state.json")
    assert not (interrupted / "final").exists()
    subprocess.run([*command, "--resume"], check=True, capture_output=True)

    assert sorted({r["step"] for r in _rollouts(reference)}) == first_steps
    assert len(_rollouts(reference)) == 32  # 4 rounds of 2 prompts or 2 of 4, x 4 each
    assert _rollouts(interrupted) == _rollouts(reference)  # completions, rewards, advantages
    metrics = [json.loads(line) for line in (interrupted / "metrics.jsonl").open()]
    expected = [json.loads(line) for line in (reference / "metrics.jsonl").open()]
    assert [m["step"] for m in metrics] == list(range(1, steps + 1))
    for ours, theirs in zip(metrics, expected, strict=True):
        assert ours["reward"] == theirs["reward"] and ours["rollout"] == theirs["rollout"]
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5, abs=1e-9)


def test_a_checkpoint_inside_a_round_without_its_saved_round_is_refused(tmp_path):
    from observe_r1.training.train import train
    from observe_r1.training.trainer import ROUND_STATE, ResumeError
    from tests.observe_r1.training.test_trainer import config_for

    settings = {"steps_per_generation": 2, "num_iterations": 2, "max_completion_length": 8}
    config = config_for(tmp_path, max_steps=2, **settings)
    train(config)
    checkpoint = Path(config.output_dir) / "checkpoint-2"
    saved = checkpoint / ROUND_STATE.format(rank=0)
    assert saved.is_file()
    saved.unlink()  # as a checkpoint written by a trainer that did not save the round
    with pytest.raises(ResumeError, match=r"inside a generation round \(micro-step 2 of 4\)"):
        train(config_for(tmp_path, max_steps=3, **settings), resume=True)


@pytest.mark.slow
def test_two_processes_killed_inside_a_round_resume_exactly(tmp_path):
    import shutil

    import psutil

    data = write_rows(tmp_path, n=16)  # 2 ranks x 2 prompts per step: 8 prompts per round
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    repo = Path(__file__).parents[3]
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    settings = ["--set", "steps_per_generation=2", "--set", "num_iterations=2"]

    def command(out: Path) -> list[str]:  # torchrun ... -m observe_r1.cli train ...
        return [torchrun, "--nproc_per_node", "2", *_command(data, out, 8, *settings)[1:]]

    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    subprocess.run(command(reference), check=True, capture_output=True, cwd=repo, env=env)
    process = subprocess.Popen(
        command(interrupted), cwd=repo, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    state = interrupted / "checkpoint-2" / "trainer_state.json"
    deadline = time.monotonic() + 300
    while not state.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = psutil.Process(process.pid).children(recursive=True)  # own sessions
    for victim in [process, *workers]:
        os.kill(victim.pid, signal.SIGKILL)
    process.wait()
    psutil.wait_procs(workers, timeout=30)
    assert state.is_file() and not (interrupted / "checkpoint-4").exists()
    subprocess.run(
        [*command(interrupted), "--resume"], check=True, capture_output=True, cwd=repo, env=env
    )
    assert sorted({r["step"] for r in _rollouts(reference)}) == [1, 5]
    assert _rollouts(interrupted) == _rollouts(reference)
