"""Dynamic sampling (``filter_groups``) on the tiny VLM: dropped groups are replaced by the
ladder's next prompts, in file order, the round trains on kept groups only, the bound on
refill passes fills with dropped groups, resume is exact, and two processes agree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from observe_r1.rewards import make_format_reward
from observe_r1.training.config import ConfigError
from observe_r1.training.shaping import shape_advantages
from observe_r1.training.train import build_trainer
from tests.observe_r1.training.test_trainer import (
    TINY,
    RecordingObserveR1,
    _digest_bit,
    config_for,
    write_rows,
)

SOLVED, FAILED = {"count-0", "count-3"}, {"count-1"}


def ladder_judge(prompts, completions, row_id, **kwargs):
    """count-0 and count-3 solved by every completion, count-1 by none, the others about
    half the time (a hash of the text): groups the filter must drop, at known places."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    pairs = zip(row_id, texts, strict=True)
    return [
        1.0 if r in SOLVED else 0.0 if r in FAILED else float(_digest_bit(t, 0)) for r, t in pairs
    ]


ladder_judge.__name__ = "accuracy"


def _run(config, trainer_class=RecordingObserveR1):
    trainer = build_trainer(config, trainer_class)
    trainer.reward_funcs = [make_format_reward(), ladder_judge]
    trainer.train()
    return trainer


def _lines(run: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (run / name).read_text().splitlines()]


def _groups(rollouts: list[dict], size: int = 4) -> list[list[dict]]:
    return [rollouts[i : i + size] for i in range(0, len(rollouts), size)]


def expected_training(groups: list[list[dict]], per_round: int, passes_per_round: list[int]):
    """One process: per round, the first ``per_round`` groups of its passes with mixed
    correctness (else the first dropped ones): the reference the trainer must match."""
    trained, start = [], 0
    for passes in passes_per_round:
        dealt = groups[start : start + passes * per_round]
        start += passes * per_round
        kept = [g for g in dealt if 0 < sum(r["correct"] for r in g) < len(g)]
        spare = [g for g in dealt if g not in kept]
        trained.append((kept + spare)[:per_round])
    return trained


def test_dropped_groups_are_replaced_by_the_next_prompts_in_ladder_order(tmp_path):
    config = config_for(tmp_path, max_steps=2, max_completion_length=8, **_filter())
    trainer = _run(config)
    run = Path(config.output_dir)
    rollouts = _lines(run, "rollouts.jsonl")
    metrics = [m for m in _lines(run, "metrics.jsonl") if "rollout" in m]

    dealt = [g[0]["row_id"] for g in _groups(rollouts)]
    assert dealt == [f"count-{i % 6}" for i in range(len(dealt))]  # file order, wrapping
    passes = [int(m["refill_rounds"]) + 1 for m in metrics]
    assert [m["prompts_consumed"] for m in metrics] == [2 * p for p in passes]
    assert passes[0] >= 3  # count-0, count-1 and count-3 are dropped in the first round
    groups = _groups(rollouts)
    expected = expected_training(groups, 2, passes)
    for step, chosen in zip((1, 2), expected, strict=True):
        trained = [g for g in groups if g[0]["step"] == step and g[0]["trained"]]
        assert [g[0]["row_id"] for g in trained] == [g[0]["row_id"] for g in chosen]
        assert all(r["trained"] == g[0]["trained"] for g in groups for r in g)
    for metric, step in zip(metrics, (1, 2), strict=True):
        mixed = [0 < sum(r["correct"] for r in g) < 4 for g in groups if g[0]["step"] == step]
        assert metric["groups_dropped"] == mixed.count(False)
        assert metric["groups_filled"] == 0
    assert not {g[0]["row_id"] for g in groups if g[0]["trained"]} & (SOLVED | FAILED)

    # trained on exactly the kept groups' shaped advantages (TRL shuffles inside a round)
    for used, chosen in zip(trainer.used_advantages, expected, strict=True):
        rewards = torch.tensor([[sum(r["rewards"].values()) for r in g] for g in chosen])
        correct = torch.tensor([[r["correct"] for r in g] for g in chosen])
        lengths = torch.tensor([[r["length"] for r in g] for g in chosen])
        shaped = shape_advantages(rewards, correct, lengths, bonus_min_length=4, eps=1e-4)
        torch.testing.assert_close(used.sort().values, shaped.view(-1).sort().values)
        assert used.abs().sum() > 0


def _filter(**more) -> dict:
    return {"filter_groups": "[all_correct, all_wrong]", **more}


def test_the_refill_bound_completes_the_round_with_dropped_groups(tmp_path):
    config = config_for(
        tmp_path, max_steps=1, max_completion_length=8, **_filter(max_refill_rounds=0)
    )
    _run(config)
    run = Path(config.output_dir)
    groups = _groups(_lines(run, "rollouts.jsonl"))
    assert [(g[0]["row_id"], g[0]["trained"]) for g in groups] == [
        ("count-0", True),
        ("count-1", True),
    ]
    metric = _lines(run, "metrics.jsonl")[0]
    assert (metric["groups_dropped"], metric["groups_filled"], metric["refill_rounds"]) == (2, 2, 0)
    assert metric["prompts_consumed"] == 2


def test_a_resumed_run_deals_the_same_prompts_and_trains_the_same(tmp_path):
    settings = {"max_completion_length": 8, "lr_scheduler_type": "constant", **_filter()}
    (tmp_path / "reference").mkdir()
    reference = config_for(tmp_path / "reference", max_steps=4, **settings)
    _run(reference)
    _run(config_for(tmp_path, max_steps=2, **settings))
    resumed = config_for(tmp_path, max_steps=4, **settings)
    trainer = build_trainer(resumed, RecordingObserveR1)
    trainer.reward_funcs = [make_format_reward(), ladder_judge]
    trainer.train(resume_from_checkpoint=str(Path(resumed.output_dir) / "checkpoint-2"))
    ours, theirs = Path(resumed.output_dir), Path(reference.output_dir)
    assert _lines(ours, "rollouts.jsonl") == _lines(theirs, "rollouts.jsonl")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"filter_groups": "[all_right]"}, "filter_groups: unknown rule 'all_right'"),
        ({"filter_groups": "all_correct"}, "filter_groups must be a list of rules"),
        ({"max_refill_rounds": -1}, "'max_refill_rounds' must be an integer >= 0"),
    ],
)
def test_bad_dynamic_sampling_settings_are_one_config_error(tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message):
        config_for(tmp_path, **settings)


@pytest.mark.slow
def test_two_processes_each_fill_their_part_of_the_round_from_the_same_passes(tmp_path):
    data = write_rows(tmp_path, n=8)
    out = tmp_path / "run"
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    script = Path(__file__).with_name("distributed_run.py")
    command = [
        torchrun, "--nproc_per_node", "2", str(script), str(TINY), f"train_file={data}",
        f"output_dir={out}", "max_steps=1", "max_completion_length=8",
        "filter_groups=[all_correct, all_wrong]",
    ]  # fmt: skip
    repo = Path(__file__).parents[3]
    env = {**os.environ, "PYTHONPATH": str(repo), "OBSERVE_R1_JUDGE": "ladder"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=repo, env=env)
    assert result.returncode == 0, result.stderr[-3000:]

    groups = _groups(_lines(out, "rollouts.jsonl"))
    passes = [groups[i : i + 4] for i in range(0, len(groups), 4)]  # 2 ranks x 2 groups
    assert [g[0]["row_id"] for g in groups] == [f"count-{i % 8}" for i in range(len(groups))]
    assert len(passes) >= 2  # count-0, -1 (rank 0) and count-3 (rank 1) dropped in pass 1
    for rank in (0, 1):
        mine = [g for p in passes for g in p[2 * rank : 2 * rank + 2]]
        kept = [g for g in mine if 0 < sum(r["correct"] for r in g) < 4]
        spare = [g for g in mine if g not in kept]
        chosen = (kept + spare)[:2]
        assert sorted(g[0]["row_id"] for g in mine if g[0]["trained"]) == sorted(
            g[0]["row_id"] for g in chosen
        )
        rewards = torch.tensor([[sum(r["rewards"].values()) for r in g] for g in chosen])
        correct = torch.tensor([[r["correct"] for r in g] for g in chosen])
        lengths = torch.tensor([[r["length"] for r in g] for g in chosen])
        shaped = shape_advantages(rewards, correct, lengths, bonus_min_length=4, eps=1e-4)
        used = torch.tensor(json.loads((out / f"used-{rank}.json").read_text())[0])
        torch.testing.assert_close(used.sort().values, shaped.view(-1).sort().values)
