"""``accelerate launch`` of ``observe-r1 ladder`` on 2 CPU processes (gloo) writes the
ladder, stats and cache of a one-process build: the batches are those of one process, each
seeded from its first key, dealt round-robin and gathered."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from observe_r1.cli import app
from observe_r1.data.synth import synthesize
from observe_r1.ladder.build import side_paths
from observe_r1.ladder.cache import RolloutCache
from observe_r1.ladder.rollouts import Completion

REPO = Path(__file__).parents[3]
MODEL = "tiny-qwen2.5-vl"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rows_with_mixed_images(folder: Path) -> Path:
    """5 synth rows, then a text-only row and a two-image row (the synth images)."""
    path = synthesize(folder, 5, seed=0)
    first, second = (json.loads(line)["image"] for line in path.read_text().splitlines()[:2])
    extra = [
        {"id": "text", "question": "What is 2 + 3?", "answer": "5"},
        {"id": "two", "images": [first, second], "question": "How many images?", "answer": "2"},
    ]
    with path.open("a") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in extra)
    return path


def without_run_facts(stats: dict) -> dict:
    """Stats less what differs between launches: throughput, processes, output path."""
    facts = {"rollouts", "processes"}
    settings = {k: v for k, v in stats["settings"].items() if k != "out"}
    return {k: v for k, v in stats.items() if k not in facts} | {"settings": settings}


@pytest.mark.slow
def test_two_processes_build_the_ladder_of_one(tmp_path):
    data = rows_with_mixed_images(tmp_path / "data")
    options = ["--model", MODEL, "--rollouts", "3", "--max-new-tokens", "5", "--batch-size", "2"]
    one = tmp_path / "one.jsonl"
    result = CliRunner().invoke(app, ["ladder", "--input", str(data), "--out", str(one), *options])
    assert result.exit_code == 0, result.output

    two = tmp_path / "two.jsonl"
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    command = [
        accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
        str(free_port()), "-m", "observe_r1.cli", "ladder", "--input", str(data), "--out",
        str(two), *options,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]

    assert two.read_bytes() == one.read_bytes()
    stats = [json.loads(side_paths(path)["stats"].read_text()) for path in (one, two)]
    assert [s["processes"] for s in stats] == [1, 2]
    assert stats[1]["rollouts"]["generated"] == stats[0]["rollouts"]["generated"] == 7 + 7 * 3
    # batches of 2 of the 7 rows, dealt in turn: rank 0 gets 4 rows of each pass, rank 1 3
    assert stats[1]["rollouts"]["generated_by_process"] == [4 + 4 * 3, 3 + 3 * 3]
    assert without_run_facts(stats[1]) == without_run_facts(stats[0])
    caches = [side_paths(path)["cache"] for path in (one, two)]
    assert RolloutCache(caches[1])._entries == RolloutCache(caches[0])._entries
    assert [p.name for p in caches[1].iterdir()] == ["rollouts.jsonl"]  # the parts merged
    assert not list(tmp_path.glob(".*.tmp*"))  # atomic writes leave no temporary file


def test_parts_of_a_killed_sharded_build_move_into_the_main_file(tmp_path):
    main, part = RolloutCache(tmp_path), RolloutCache(tmp_path, rank=1)
    main.put("a", [Completion("x", 1)])
    part.put("b", [Completion("y", 2)])
    with (tmp_path / "rollouts.part-1.jsonl").open("a") as handle:
        handle.write('{"key": "c", "compl')  # cut by the kill
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rollouts.jsonl", "rollouts.part-1.jsonl"]
    other = RolloutCache(tmp_path, rank=1)  # a non-main process reads the parts, moves nothing
    assert "b" in other and (tmp_path / "rollouts.part-1.jsonl").is_file()
    reopened = RolloutCache(tmp_path)  # the main process opens it first: parts move over
    assert [p.name for p in tmp_path.iterdir()] == ["rollouts.jsonl"]
    assert reopened.get("b") == [Completion("y", 2)] and "c" not in reopened
    assert (
        RolloutCache(tmp_path)._entries
        == reopened._entries
        == {
            "a": [Completion("x", 1)],
            "b": [Completion("y", 2)],
        }
    )
