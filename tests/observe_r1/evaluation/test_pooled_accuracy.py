"""experiments/pooled_accuracy.py on hand-made predictions of two held-out sets."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[3] / "experiments" / "pooled_accuracy.py"


def write_set(folder: Path, rows: list[dict], records: list[dict]) -> str:
    (folder / "eval").mkdir(parents=True)
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = "".join(json.dumps(r) + "\n" for r in records)
    (folder / "eval" / "predictions.jsonl").write_text(lines)
    return f"{folder / 'eval'}:{folder / 'test.jsonl'}"


def record(row: int, gold: str, correct: bool, response: str) -> dict:
    return {"row": row, "sample": 0, "family": "f", "level": 1, "gold": gold,
            "correct": correct, "formatted": True, "tokens": 5, "response": response}  # fmt: skip


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_sets_are_rescored_and_pooled(tmp_path):
    first = write_set(
        tmp_path / "a",
        [{"caption": "3 dots.", "answer": "3"}, {"caption": "5 dots.", "answer": "3"}],
        [record(0, "3", True, "<observe>3 dots</observe>"), record(1, "3", False, "none")],
    )
    second = write_set(
        tmp_path / "b",
        [{"answer": "A", "choices": ["1", "2"]}, {"answer": "7"}],
        [record(0, "A", True, "<answer>A</answer>"), record(1, "7", True, "<answer>7</answer>")],
    )
    result = run(first, second)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "1/2 right (choice 0/0, open 1/2), majority 2" in lines[0]
    assert lines[0].endswith("observation recall 0.500")
    assert "2/2 right (choice 1/1, open 1/1), majority 1" in lines[1]
    assert lines[1].endswith("observation recall -")
    assert lines[2].startswith("pooled: 3/4 = 0.750 vs majority 3/4 = 0.750")


def test_bad_arguments_are_named(tmp_path):
    assert "expected EVAL_DIR:TEST.jsonl" in run("no-colon").stderr
    (tmp_path / "test.jsonl").write_text('{"answer": "1"}\n')
    missing = run(f"{tmp_path}:{tmp_path / 'test.jsonl'}")
    assert missing.returncode == 1 and "predictions.jsonl: not found" in missing.stderr
