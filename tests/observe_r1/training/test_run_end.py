"""How ``observe-r1 train`` ends: a resume at ``max_steps`` trains nothing more, a
non-finite gradient and a full disk stop with one error line (exit 2), keeping the
checkpoints before them, and a resume afterwards ends as the uninterrupted run."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import safetensors.torch
from safetensors import SafetensorError
from typer.testing import CliRunner

from observe_r1.cli import app
from observe_r1.training.trainer import ObserveR1Trainer
from tests.observe_r1.training.test_trainer import TINY, write_rows

# a constant rate: a step past the end would change the weights
SETTINGS = ["max_completion_length=8", "lr_scheduler_type=constant"]


def train(data: Path, out: Path, *extra: str):
    options = [item for setting in SETTINGS for item in ("--set", setting)]
    command = ["train", "--config", str(TINY), "--output-dir", str(out)]
    return CliRunner().invoke(app, [*command, "--set", f"train_file={data}", *options, *extra])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def last_line(result) -> str:
    return result.output.splitlines()[-1]


def strict_json(line: str):
    """``line`` parsed as JSON, which has no NaN or Infinity (Python's parser takes them)."""
    return json.loads(line, parse_constant=lambda name: pytest.fail(f"bare {name}: {line}"))


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """(rows, run folder) of a finished 2-step run (a checkpoint every step)."""
    root = tmp_path_factory.mktemp("reference")
    data = write_rows(root)
    result = train(data, root / "run")
    assert result.exit_code == 0, result.output
    return data, root / "run"


def test_resuming_a_finished_run_trains_nothing_more(finished, tmp_path):
    data, reference = finished
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    for missing_final in (False, True):  # finished, or killed after its last checkpoint
        if missing_final:
            shutil.rmtree(run / "final")
        result = train(data, run, "--resume")
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
        for name in ("metrics.jsonl", "rollouts.jsonl"):
            assert len(lines(run / name)) == len(lines(reference / name)), name
        assert digest(run / "final" / "model.safetensors") == digest(
            reference / "final" / "model.safetensors"
        )


def test_a_non_finite_gradient_stops_naming_the_step(tmp_path, monkeypatch):
    loss = ObserveR1Trainer._compute_loss

    def poisoned(self, model, inputs):  # step 2's loss (and so its gradients) NaN
        value = loss(self, model, inputs)
        return value * float("nan") if self.state.global_step == 1 else value

    monkeypatch.setattr(ObserveR1Trainer, "_compute_loss", poisoned)
    run = tmp_path / "run"
    result = train(write_rows(tmp_path), run)
    assert result.exit_code == 2, result.output
    assert last_line(result).startswith("error: step 2: the gradient norm is nan")
    assert (run / "checkpoint-1" / "trainer_state.json").is_file()
    assert not (run / "checkpoint-2").exists() and not (run / "final").exists()
    records = [strict_json(line) for line in lines(run / "metrics.jsonl")]
    assert [r["step"] for r in records] == [1]


@pytest.mark.parametrize("full_at", ["checkpoint-2", "final"])
def test_a_full_disk_during_a_save_is_an_error_and_resume_ends_as_the_run(
    finished, tmp_path, monkeypatch, full_at
):
    data, reference = finished
    write = safetensors.torch.serialize_file

    def disk_full(tensors, filename, metadata=None):
        if full_at in Path(filename).parts:
            raise SafetensorError(
                "Error while serializing: I/O error: No space left on device (os error 28)"
            )
        return write(tensors, filename, metadata=metadata)

    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(safetensors.torch, "serialize_file", disk_full)
        result = train(data, run)
    assert result.exit_code == 2, result.output
    assert last_line(result).startswith(f"error: {run / full_at}: could not be written")
    assert "No space left on device" in result.output and "internal error" not in result.output
    assert (run / "checkpoint-1" / "trainer_state.json").is_file()

    result = train(data, run, "--resume")
    assert result.exit_code == 0, result.output
    assert lines(run / "rollouts.jsonl") == lines(reference / "rollouts.jsonl")
    assert digest(run / "final" / "model.safetensors") == digest(
        reference / "final" / "model.safetensors"
    )
