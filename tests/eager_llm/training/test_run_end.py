"""How ``eager-llm train`` ends: a resume at ``max_steps`` trains nothing more; NaN in the
index's embeddings, a non-finite gradient and a full disk are one error line (exit 2),
keeping the checkpoints written before them, and a resume afterwards ends as the
uninterrupted run."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import typer
from safetensors import SafetensorError
from typer.testing import CliRunner

from eager_llm.cli.train import anneal_command, train_command
from eager_llm.training import EagerTrainer
from tests.eager_llm.training.toy import CONFIG, toy_index

FILES = ("final/model.safetensors", "projectors.safetensors")
# a constant rate (a step past the end would change the weights); validation at the start
# and with each checkpoint, as the shipped configs do
SETTINGS = [
    "lr_scheduler_type=constant",
    "eval_strategy=steps",
    "eval_steps=2",
    "eval_on_start=true",
    "valid_users=3",
]


def cli(args: list[str]):
    app = typer.Typer()
    app.command("train")(train_command)
    app.command("anneal")(anneal_command)
    return CliRunner().invoke(app, args)


def train(index: Path, out: Path, *extra: str):
    command = ["train", "--config", str(CONFIG), "--index", str(index), "--output-dir", str(out)]
    settings = [item for setting in SETTINGS for item in ("--set", setting)]
    return cli([*command, *settings, *extra])


def digests(run: Path) -> dict[str, str]:
    return {name: hashlib.sha256((run / name).read_bytes()).hexdigest() for name in FILES}


def records(run: Path) -> list[tuple[int, bool]]:
    """(step, whether a validation) of each metrics.jsonl line."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], "eval_recall@10" in r) for r in map(json.loads, lines)]


def steps(run: Path) -> list[int]:
    return [step for step, validation in records(run) if not validation]


def last_line(result) -> str:
    return result.output.splitlines()[-1]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """(index, run folder) of a finished 4-step run (checkpoints at steps 2 and 4)."""
    root = tmp_path_factory.mktemp("eager")
    index = toy_index(root)
    result = train(index, root / "run")
    assert result.exit_code == 0, result.output
    return index, root / "run"


def test_resuming_a_finished_run_trains_nothing_more(finished, tmp_path):
    index, reference = finished
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    for missing_final in (False, True):  # finished, or killed after its last checkpoint
        if missing_final:
            shutil.rmtree(run / "final")
        result = train(index, run, "--resume")
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
        assert steps(run) == [1, 2, 3, 4] and records(run) == records(reference)
        assert digests(run) == digests(reference)


def test_resuming_a_finished_anneal_trains_nothing_more(finished, tmp_path):
    index, stage1 = finished
    run = tmp_path / "anneal"
    command = [
        "anneal", "--config", str(CONFIG), "--from", str(stage1), "--index", str(index),
        "--output-dir", str(run), "--max-steps", "2", "--set", "lr_scheduler_type=constant",
    ]  # fmt: skip
    result = cli(command)
    assert result.exit_code == 0, result.output
    final = (run / "final" / "model.safetensors").read_bytes()
    result = cli([*command, "--resume"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2"]
    assert steps(run) == [1, 2]
    assert (run / "final" / "model.safetensors").read_bytes() == final


def test_a_non_finite_gradient_stops_naming_the_step(finished, tmp_path, monkeypatch):
    loss = EagerTrainer.compute_loss

    def poisoned(self, *args, **kwargs):  # step 3's loss (and so its gradients) NaN
        value = loss(self, *args, **kwargs)
        return value * float("nan") if self.state.global_step == 2 else value

    monkeypatch.setattr(EagerTrainer, "compute_loss", poisoned)
    run = tmp_path / "run"
    result = train(finished[0], run)
    assert result.exit_code == 2, result.output
    assert last_line(result).startswith("error: step 3: the gradient norm is nan")
    assert (run / "checkpoint-2" / "trainer_state.json").is_file()
    assert not (run / "checkpoint-4").exists() and not (run / "final").exists()
    assert steps(run) == [1, 2]


@pytest.mark.parametrize("full_at", ["checkpoint-4", "final"])
def test_a_full_disk_during_a_save_is_an_error_and_resume_ends_as_the_run(
    finished, tmp_path, monkeypatch, full_at
):
    index, reference = finished
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
        result = train(index, run)
    assert result.exit_code == 2, result.output
    assert last_line(result).startswith(f"error: {run / full_at}: could not be written")
    assert (run / "checkpoint-2" / "trainer_state.json").is_file()

    result = train(index, run, "--resume")
    assert result.exit_code == 0, result.output
    assert steps(run) == [1, 2, 3, 4] and records(run) == records(reference)
    assert digests(run) == digests(reference)


def test_nan_in_the_index_embeddings_is_an_input_error(finished, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(finished[0], index)
    vectors = np.load(index / "behaviour_embeddings.npy")
    vectors[3, 1] = np.nan
    np.save(index / "behaviour_embeddings.npy", vectors)
    result = train(index, tmp_path / "run")
    assert result.exit_code == 2, result.output
    assert "behaviour_embeddings.npy: row 3 (item " in last_line(result)
    assert "NaN or infinite" in last_line(result)
    assert not (tmp_path / "run").exists()
