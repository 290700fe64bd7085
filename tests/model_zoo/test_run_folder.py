"""model_zoo.run_folder: one run per folder, resumed only as itself, past half-written
checkpoints (issue 19, items 1-3). The trainers' use of it is tested through both CLIs in
tests/test_run_folders.py and tests/test_bad_run_configs.py."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from model_zoo.run_folder import (
    FINGERPRINT,
    RunFolderError,
    apply_plan,
    checkpoint_problem,
    config_fingerprint,
    describe_difference,
    plan_run,
)


def checkpoint(folder: Path, step: int) -> Path:
    """A checkpoint as the Trainer writes one: weights, optimizer, state last."""
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    save_file({"w": torch.ones(64, 64)}, path / "model.safetensors")
    torch.save({"state": torch.zeros(64)}, path / "optimizer.pt")
    (path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def fingerprint(tmp_path: Path, lr: float = 1e-5, data: str = "rows\n") -> dict:
    (tmp_path / "rows.jsonl").write_text(data)
    settings = {"learning_rate": lr, "max_steps": 4, "output_dir": "x", "train_file": "a"}
    return config_fingerprint(
        "observe-r1", settings, {"train_file": tmp_path / "rows.jsonl"}, ["train_file"]
    )


def test_a_whole_checkpoint_passes(tmp_path):
    assert checkpoint_problem(checkpoint(tmp_path, 2)) is None


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda c: (c / "trainer_state.json").unlink(), "no trainer_state.json"),
        (lambda c: truncate(c / "trainer_state.json"), "trainer_state.json is not valid JSON"),
        (lambda c: (c / "model.safetensors").unlink(), "no model weights"),
        (lambda c: truncate(c / "model.safetensors"), "model.safetensors is truncated"),
        (lambda c: truncate(c / "model.safetensors", 0.0001), "model.safetensors is truncated"),
        (lambda c: truncate(c / "optimizer.pt", 0.9), "optimizer.pt is truncated"),
        (lambda c: (c / "optimizer.pt.tmp").write_bytes(b"x"), "optimizer.pt.tmp was being"),
        (
            lambda c: (c / "model.safetensors.index.json").write_text(
                json.dumps({"weight_map": {"w": "model-00002-of-00002.safetensors"}})
            ),
            "lists model-00002-of-00002.safetensors, which is missing",
        ),
    ],
    ids=[
        "no-state",
        "state-cut",
        "no-weights",
        "weights-cut",
        "weights-header-cut",
        "optimizer-cut",
        "temporary-file",
        "missing-shard",
    ],
)
def test_a_half_written_checkpoint_is_named_incomplete(tmp_path, damage, reason):
    folder = checkpoint(tmp_path, 2)
    assert zipfile.is_zipfile(folder / "optimizer.pt")  # what the check relies on
    damage(folder)
    assert reason in checkpoint_problem(folder)


def test_a_new_run_into_a_folder_with_another_run_is_refused_and_untouched(tmp_path):
    run = tmp_path / "run"
    checkpoint(run, 2)
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    (run / "notes.txt").write_text("mine\n")
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(RunFolderError, match="holds an earlier run .*--resume.*--overwrite"):
        plan_run(run, fingerprint(tmp_path), resume=False, overwrite=False)
    assert sorted(p.name for p in run.iterdir()) == before
    # a folder with files no run writes is free
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine\n")
    plan = plan_run(tmp_path / "other", fingerprint(tmp_path), resume=False, overwrite=False)
    assert plan.checkpoint is None and plan.remove == []


def test_overwrite_removes_only_the_runs_files_and_writes_the_fingerprint(tmp_path):
    run = tmp_path / "run"
    checkpoint(run, 2)
    (run / "final").mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    (run / "reward_curve.png").write_bytes(b"png")
    (run / "notes.txt").write_text("mine\n")
    new = fingerprint(tmp_path)
    plan = plan_run(
        run, new, resume=False, overwrite=True, records=["*.jsonl"], derived=["*_curve.png"]
    )
    assert len(list(run.iterdir())) == 5  # planning changes nothing
    apply_plan(plan, echo=lambda line: None)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt", FINGERPRINT]
    assert json.loads((run / FINGERPRINT).read_text()) == new


def test_resume_with_another_config_or_data_is_refused_naming_the_difference(tmp_path):
    run = tmp_path / "run"
    checkpoint(run, 2)
    stored = fingerprint(tmp_path, lr=1e-5)
    apply_plan(plan_run(run, stored, resume=True, overwrite=False), echo=lambda line: None)
    with pytest.raises(RunFolderError, match="'learning_rate' differs: 1e-05 when the run st"):
        plan_run(run, fingerprint(tmp_path, lr=2e-5), resume=True, overwrite=False)
    with pytest.raises(RunFolderError, match="content of 'train_file' differs"):
        plan_run(run, fingerprint(tmp_path, data="other rows\n"), resume=True, overwrite=False)
    # what may change on a resume: max_steps, output_dir, the train file's name
    same = fingerprint(tmp_path)
    same["config"].pop("max_steps", None)
    plan = plan_run(run, same, resume=True, overwrite=False)
    assert plan.checkpoint == run / "checkpoint-2" and not plan.write_fingerprint


def test_ignored_keys_do_not_count():
    def settings(steps):
        return {"max_steps": steps, "output_dir": f"o{steps}", "seed": 1, "report_to": []}

    a = config_fingerprint("eager-llm", settings(4), {})
    b = config_fingerprint("eager-llm", settings(9), {})
    assert describe_difference(a, b) is None
    c = config_fingerprint("eager-llm", {**settings(4), "seed": 2}, {})
    assert "config key 'seed' differs: 1 when the run started, 2 now" in describe_difference(a, c)
    assert "observe-r1 run" in describe_difference(a | {"system": "observe-r1"}, a)
    upgraded = config_fingerprint("eager-llm", {**settings(4), "new_field": 1}, {})
    assert describe_difference(a, upgraded) is None  # a field a newer version added


def test_resume_skips_incomplete_checkpoints_and_sets_them_aside(tmp_path):
    run = tmp_path / "run"
    for step in (2, 4, 6):
        checkpoint(run, step)
    truncate(run / "checkpoint-6" / "model.safetensors")
    (run / "checkpoint-4" / "trainer_state.json").unlink()
    plan = plan_run(run, fingerprint(tmp_path), resume=True, overwrite=False)
    assert plan.checkpoint == run / "checkpoint-2" and plan.step == 2
    notes = []
    apply_plan(plan, echo=notes.append)
    assert "checkpoint-6 is incomplete (model.safetensors is truncated)" in notes[1]
    assert "checkpoint-4 is incomplete (no trainer_state.json)" in notes[2]
    names = sorted(p.name for p in run.iterdir())
    assert names == [
        "checkpoint-2",
        "incomplete-checkpoint-4",
        "incomplete-checkpoint-6",
        FINGERPRINT,
    ]
    # no fingerprint before: a note, and it is stored now
    assert "no run_fingerprint.json" in notes[0]


def test_resume_without_any_complete_checkpoint_starts_over(tmp_path):
    run = tmp_path / "run"
    checkpoint(run, 2)
    (run / "checkpoint-2" / "trainer_state.json").unlink()
    plan = plan_run(run, fingerprint(tmp_path), resume=True, overwrite=False)
    assert plan.checkpoint is None and plan.step == 0
    assert "no complete checkpoint" in plan.notes[-1]


def test_resume_and_overwrite_exclude_each_other_and_a_file_is_no_folder(tmp_path):
    with pytest.raises(RunFolderError, match="give one"):
        plan_run(tmp_path, fingerprint(tmp_path), resume=True, overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="file: exists and is not a folder"):
        plan_run(tmp_path / "file", fingerprint(tmp_path), resume=False, overwrite=False)
    with pytest.raises(RunFolderError, match="is not a folder"):
        plan_run(tmp_path / "file" / "run", fingerprint(tmp_path), resume=False, overwrite=False)


def test_a_damaged_fingerprint_is_refused_on_resume(tmp_path):
    run = tmp_path / "run"
    checkpoint(run, 2)
    (run / FINGERPRINT).write_text('{"system": ')
    with pytest.raises(RunFolderError, match="run_fingerprint.json: not valid JSON"):
        plan_run(run, fingerprint(tmp_path), resume=True, overwrite=False)


def test_leftovers_of_an_interrupted_overwrite_are_removed(tmp_path):
    run = tmp_path / "run"
    (run / ".replaced-1" / "checkpoint-2").mkdir(parents=True)
    (run / f"{FINGERPRINT}.tmp").write_text("{")
    plan = plan_run(run, fingerprint(tmp_path), resume=False, overwrite=False)
    apply_plan(plan, echo=lambda line: None)
    assert sorted(p.name for p in run.iterdir()) == [FINGERPRINT]


def test_files_a_run_writes_before_training_do_not_make_a_run(tmp_path):
    """e.g. eager's validation_baselines.json, written when the trainer is built."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "validation_baselines.json").write_text("{}")
    kinds = {"records": ["metrics.jsonl"], "derived": ["validation_baselines.json"]}
    plan = plan_run(run, fingerprint(tmp_path), resume=False, overwrite=False, **kinds)
    assert plan.remove == []
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(RunFolderError, match=r"holds an earlier run \(metrics.jsonl\)"):
        plan_run(run, fingerprint(tmp_path), resume=False, overwrite=False, **kinds)
    plan = plan_run(run, fingerprint(tmp_path), resume=False, overwrite=True, **kinds)
    assert sorted(p.name for p in plan.remove) == ["metrics.jsonl", "validation_baselines.json"]
