"""Validation during training (``eval_file``): records in metrics.jsonl scored as
``observe-r1 eval`` scores, no effect on training, exact resume, bad settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from observe_r1.data.rows import read_rows
from observe_r1.evaluation.evaluate import evaluate_model
from observe_r1.training.config import ConfigError
from observe_r1.training.train import train
from observe_r1.training.validation import VALID_KEYS, shard, unshard
from tests.observe_r1.training.test_trainer import config_for, write_rows


def _records(run: Path) -> tuple[list[dict], list[dict]]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if "rollout" in r], [r for r in lines if "eval_accuracy" in r]


def _rollouts(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "rollouts.jsonl").read_text().splitlines()]


def test_shards_of_every_rank_merge_back_in_order():
    rows = list(range(7))
    for world in (1, 2, 3, 8):
        parts = [shard(rows, rank, world) for rank in range(world)]
        assert sorted(sum(parts, [])) == rows
        assert unshard(parts) == rows


def test_validations_are_logged_scored_like_eval_and_leave_training_unchanged(tmp_path):
    held_out = write_rows(tmp_path / "held_out", n=5)
    settings = {"max_steps": 2, "max_completion_length": 8, "lr_scheduler_type": "constant"}
    (tmp_path / "plain").mkdir()
    plain = config_for(tmp_path / "plain", **settings)
    train(plain)
    config = config_for(tmp_path, eval_file=held_out, eval_steps=2, eval_limit=3, **settings)
    final = train(config)

    run = Path(config.output_dir)
    steps, validations = _records(run)
    assert [r["step"] for r in steps] == [1, 2]
    assert [r["step"] for r in validations] == [0, 2]  # before training, then every 2 steps
    assert all(r["eval_rows"] == 3 for r in validations)
    # the last validation is what `observe-r1 eval` reports for the final model
    rows = read_rows(held_out).rows[:3]
    metrics, _ = evaluate_model(str(final), rows, max_new_tokens=8)
    last = validations[-1]
    assert [last[key] for key in VALID_KEYS] == [
        metrics["accuracy"], metrics["format_rate"], metrics["mean_tokens"]
    ]  # fmt: skip
    assert _rollouts(run) == _rollouts(Path(plain.output_dir))  # same completions, advantages
    assert (run / "reward_curve.png").stat().st_size > 0


def test_a_resumed_run_validates_each_step_once_and_continues_exactly(tmp_path):
    held_out = write_rows(tmp_path / "held_out", n=2)
    settings = {
        "eval_file": held_out,
        "eval_steps": 2,
        "max_completion_length": 8,
        "lr_scheduler_type": "constant",
    }
    (tmp_path / "reference").mkdir()
    reference = config_for(tmp_path / "reference", max_steps=4, **settings)
    train(reference)
    train(config_for(tmp_path, max_steps=2, **settings))
    resumed = config_for(tmp_path, max_steps=4, **settings)
    train(resumed, resume=True)

    run, expected = Path(resumed.output_dir), Path(reference.output_dir)
    assert _rollouts(run) == _rollouts(expected)
    steps, validations = _records(run)
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert [r["step"] for r in validations] == [0, 2, 4]
    assert steps[2]["rollout"] == 3 and steps[2]["reward"] is not None
    reference_validations = _records(expected)[1]
    for ours, theirs in zip(validations, reference_validations, strict=True):
        assert [ours[k] for k in VALID_KEYS] == pytest.approx([theirs[k] for k in VALID_KEYS])


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"eval_steps": 0.5}, "'eval_steps' must be a whole number of optimizer steps >= 1"),
        ({"eval_limit": 0}, "'eval_limit' must be an integer >= 1"),
        ({"eval_strategy": "steps"}, "leave eval_strategy at 'no'"),
    ],
)
def test_bad_validation_settings_are_one_config_error(tmp_path, setting, message):
    with pytest.raises(ConfigError, match=message):
        config_for(tmp_path, eval_file=tmp_path / "train.jsonl", **setting)
