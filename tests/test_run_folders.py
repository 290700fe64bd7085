"""Run folders through both CLIs on the tiny models (issue 19, items 1-3 and the bug line):
a rerun into a folder with another run is refused, a resume with another config is refused
naming the key, a half-written last checkpoint (truncated weights, a missing or cut file) is
skipped with a note and the run resumes from the one before it, exactly; ``--overwrite``
replaces the run; an unexpected exception is one "this is a bug" line, exit status 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eager_llm.cli import app as eager_app
from observe_r1.cli import app as observe_app
from tests.eager_llm.training.toy import CONFIG as EAGER_CONFIG
from tests.eager_llm.training.toy import toy_index
from tests.observe_r1.training.test_trainer import TINY, write_rows


def invoke(app, *args) -> object:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def records(folder: Path, name: str = "metrics.jsonl", drop=("step_seconds",)) -> list[dict]:
    lines = (folder / name).read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in drop} for line in lines]


def cut(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def observe_train(data: Path, out: Path, *extra) -> object:
    return invoke(
        observe_app, "train", "--config", TINY, "--output-dir", out, "--max-steps", "2",
        "--set", f"train_file={data}", "--set", "max_completion_length=8", *extra,
    )  # fmt: skip


def test_observe_run_folder_is_one_run_resumed_past_a_half_written_checkpoint(tmp_path):
    data = write_rows(tmp_path / "data", n=4)
    out = tmp_path / "run"
    first = observe_train(data, out)
    assert first.exit_code == 0, first.output
    metrics, rollouts = records(out), records(out, "rollouts.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]

    # item 1: a second run into the folder would mix with the first: refused, untouched
    again = observe_train(data, out, "--set", "seed=1")
    assert again.exit_code == 2 and "holds an earlier run" in again.stderr
    assert records(out) == metrics
    wrong = observe_train(data, out, "--resume", "--set", "beta=0.02")
    assert wrong.exit_code == 2
    assert "config key 'beta' differs: 0.01 when the run started, 0.02 now" in wrong.stderr

    # item 3: a kill (or a full disk) while checkpoint-2's weights were written
    cut(out / "checkpoint-2" / "model.safetensors")
    resumed = observe_train(data, out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "checkpoint-2 is incomplete (model.safetensors is truncated)" in resumed.output
    assert f"resuming from {out / 'checkpoint-1'}" in resumed.output
    assert (out / "incomplete-checkpoint-2").is_dir()
    # step 2 redone from checkpoint-1: the same completions, rewards and loss
    assert records(out, "rollouts.jsonl") == rollouts
    redone = records(out)
    assert [m["step"] for m in redone] == [1, 2]
    assert redone[1]["reward"] == metrics[1]["reward"]
    assert redone[1]["loss"] == pytest.approx(metrics[1]["loss"], rel=1e-5, abs=1e-9)

    # --overwrite: the old run goes (once the new inputs check out), a new one starts
    replaced = observe_train(data, out, "--overwrite", "--max-steps", "1")
    assert replaced.exit_code == 0, replaced.output
    assert [m["step"] for m in records(out)] == [1]
    assert sorted(p.name for p in out.glob("*checkpoint-*")) == ["checkpoint-1"]


def test_observe_train_prints_a_refused_checkpoint_as_one_error_line(tmp_path):
    """``ResumeError`` (a checkpoint inside a generation round without its saved round)."""
    from observe_r1.training.trainer import ROUND_STATE

    data = write_rows(tmp_path / "data", n=4)
    out = tmp_path / "run"
    rounds = ["--set", "steps_per_generation=2", "--set", "num_iterations=2"]
    assert observe_train(data, out, *rounds).exit_code == 0
    (out / "checkpoint-2" / ROUND_STATE.format(rank=0)).unlink()
    result = observe_train(data, out, *rounds, "--resume", "--max-steps", "3")
    assert result.exit_code == 2, result.output
    last = result.stderr.splitlines()[-1]  # after the model's loading bars
    assert last.startswith("error: ") and result.stderr.count("error: ") == 1
    assert "checkpoint-2 lies inside a generation round" in last
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    return toy_index(tmp_path_factory.mktemp("eager"))


def eager_train(index: Path, out: Path, *extra) -> object:
    return invoke(
        eager_app, "train", "--config", EAGER_CONFIG, "--index", index, "--output-dir", out,
        *extra,
    )  # fmt: skip


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: (c / "trainer_state.json").unlink(),
        lambda c: cut(c / "optimizer.pt"),
        lambda c: (c / "model.safetensors").unlink(),
    ],
    ids=["no-trainer-state", "optimizer-cut", "no-weights"],
)
def test_eager_resume_skips_a_half_written_checkpoint_and_refuses_a_second_run(
    tmp_path, index, damage
):
    out = tmp_path / "run"  # tiny.yaml: 4 steps, a checkpoint every 2
    first = eager_train(index, out)
    assert first.exit_code == 0, first.output
    losses = records(out, drop=("samples_per_second",))
    assert [r["step"] for r in losses] == [1, 2, 3, 4]

    again = eager_train(index, out, "--max-steps", "2")
    assert again.exit_code == 2 and "holds an earlier run" in again.stderr
    assert records(out, drop=("samples_per_second",)) == losses

    damage(out / "checkpoint-4")
    resumed = eager_train(index, out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "checkpoint-4 is incomplete" in resumed.output
    assert f"resuming from {out / 'checkpoint-2'}" in resumed.output
    assert records(out, drop=("samples_per_second",)) == losses  # steps 3, 4 redone alike
    assert (out / "incomplete-checkpoint-4").is_dir()
    assert (out / "checkpoint-4" / "trainer_state.json").is_file()


@pytest.mark.parametrize("tool", ["observe-r1", "eager-llm"])
def test_an_unexpected_exception_is_one_bug_line_exit_1(tmp_path, monkeypatch, tool):
    """A fault no check foresaw (here planted in the training entry point)."""
    import eager_llm.training
    import observe_r1.training.train

    def broken(*args, **kwargs):
        raise KeyError("surprise")

    if tool == "observe-r1":
        monkeypatch.setattr(observe_r1.training.train, "train", broken)
        data = write_rows(tmp_path / "data", n=2)
        run = lambda: observe_train(data, tmp_path / "run")  # noqa: E731
    else:
        monkeypatch.setattr(eager_llm.training, "run", broken)
        run = lambda: eager_train(toy_index(tmp_path), tmp_path / "run")  # noqa: E731
    result = run()
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"internal error: {tool} failed with KeyError: 'surprise'. This is a bug: please "
        "report it with the command and this message on the project's issue tracker "
        "(OBSERVE_EAGER_DEBUG=1 shows the traceback)\n"
    )
    monkeypatch.setenv("OBSERVE_EAGER_DEBUG", "1")
    debugged = run()
    assert isinstance(debugged.exception, KeyError)  # the traceback is let through


@pytest.mark.parametrize("tool", ["observe-r1", "eager-llm"])
def test_a_start_that_fails_before_its_first_checkpoint_leaves_no_run(tmp_path, monkeypatch, tool):
    """Issue 31, item 7: a failure no check foresaw, after the folder was prepared (here the
    first step, once it logged), leaves no fingerprint or records: the rerun is accepted."""
    import eager_llm.training.stages
    import observe_r1.training.train

    class FailsInStep1:
        def __init__(self, out: Path, error: Exception):
            self.out, self.error = out, error

        def train(self, resume_from_checkpoint=None):
            (self.out / "metrics.jsonl").write_text('{"step": 1}\n')
            raise self.error

    out = tmp_path / "run"
    module = observe_r1.training.train if tool == "observe-r1" else eager_llm.training.stages
    if tool == "observe-r1":
        data = write_rows(tmp_path / "data", n=2)
        run = lambda: observe_train(data, out)  # noqa: E731
    else:
        index = toy_index(tmp_path)
        run = lambda: eager_train(index, out)  # noqa: E731
    for error in (MemoryError("first"), KeyError("second")):
        monkeypatch.setattr(module, "build_trainer", lambda *a, e=error, **k: FailsInStep1(out, e))
        result = run()
        assert result.exit_code == 1 and type(error).__name__ in result.stderr, result.output
        assert "holds an earlier run" not in result.stderr  # the second start was accepted
        assert sorted(path.name for path in out.iterdir()) == []


@pytest.mark.parametrize("app", [observe_app, eager_app], ids=["observe-r1", "eager-llm"])
def test_usage_errors_stay_typers(app):
    result = CliRunner().invoke(app, ["train"])
    assert result.exit_code == 2 and "Missing option '--config'" in result.output
    assert "internal error" not in result.output


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path):
    """``observe-r1 synth ... | head -c 0``: the verb's last line meets a pipe whose reader
    has gone; the command ends with click's quiet exit status 1, no "internal error" line."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has already stopped
    command = [Path(sys.executable).with_name("observe-r1"), "synth", "--out", tmp_path, "--n", "1"]
    try:
        done = subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, timeout=300)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (1, b"")
    assert (tmp_path / "rows.jsonl").is_file()  # the work itself was done
