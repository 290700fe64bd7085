"""Two CPU processes (torchrun, gloo) shape each group exactly as one process would, validate
on sharded rows as one process would, and save the final model through the trainer's save
path (every rank calls it)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText

from model_zoo import resolve
from model_zoo.processors import load_processor
from observe_r1.evaluation.evaluate import generate_responses, score
from observe_r1.training.shaping import shape_advantages
from observe_r1.training.validation import validation_record, validation_rows
from tests.observe_r1.training.test_trainer import TINY, write_rows

SCRIPT = Path(__file__).with_name("distributed_run.py")
REPO = Path(__file__).parents[3]


def test_two_processes_shape_gathered_groups_like_one(tmp_path):
    data = write_rows(tmp_path, n=4)
    out = tmp_path / "run"
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    command = [
        torchrun, "--nproc_per_node", "2", str(SCRIPT), str(TINY), f"train_file={data}",
        f"output_dir={out}", "max_steps=1", "max_completion_length=8", "bonus_min_length=2",
        f"eval_file={data}", "eval_limit=3", "per_device_eval_batch_size=1",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr[-3000:]

    rollouts = [json.loads(line) for line in (out / "rollouts.jsonl").open()]
    assert len(rollouts) == 2 * 8  # 2 ranks x 8 completions: 4 groups of 4
    groups = [r["row_id"] for r in rollouts]
    assert groups == [f"count-{i}" for i in range(4) for _ in range(4)]  # contiguous, in order
    rewards = torch.tensor([sum(r["rewards"].values()) for r in rollouts]).view(4, 4)
    correct = torch.tensor([r["correct"] for r in rollouts]).view(4, 4)
    lengths = torch.tensor([r["length"] for r in rollouts]).view(4, 4)
    one_process = shape_advantages(rewards, correct, lengths, bonus_min_length=2, eps=1e-4)
    assert one_process.abs().sum() > 0
    for rank in (0, 1):
        used = torch.tensor(json.loads((out / f"used-{rank}.json").read_text())[0])
        expected = one_process[2 * rank : 2 * rank + 2].flatten()  # this rank's two groups
        torch.testing.assert_close(used.sort().values, expected.sort().values)

    # validation: rank 0 answers rows 0 and 2, rank 1 row 1; the record of step 0 equals
    # one process answering the 3 rows with the untrained model (greedy, no padding)
    records = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    validations = [r for r in records if "eval_accuracy" in r]
    assert [(r["step"], r["eval_rows"]) for r in validations] == [(0, 3), (1, 3)]
    folder = resolve("tiny-qwen2.5-vl")
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    rows = validation_rows(str(data), 3)
    responses = generate_responses(
        model, load_processor(folder), rows, max_new_tokens=8, batch_size=1
    )
    expected = validation_record(0, score(rows, responses), 0.0)
    assert {k: v for k, v in validations[0].items() if k != "seconds"} == {
        k: v for k, v in expected.items() if k != "seconds"
    }

    trained = torch.load(out / "trained-0.pt")
    final = AutoModelForImageTextToText.from_pretrained(out / "final").state_dict()
    assert set(final) == set(trained)
    for name, tensor in trained.items():
        torch.testing.assert_close(final[name], tensor, rtol=0, atol=0)
    assert (out / "final" / "processor_config.json").is_file()
