"""The demo pipeline end to end on the tiny Qwen2.5-VL: every artefact of the report."""

import json
from pathlib import Path

from observe_r1.demo import run_demo

TINY = Path(__file__).parents[2] / "configs" / "observe_r1" / "tiny.yaml"


def test_demo_writes_a_report_with_before_and_after(tmp_path):
    report = run_demo(
        tmp_path, model="tiny-qwen2.5-vl", config=TINY, train_n=6, test_n=4, rollouts=2,
        steps=1, max_new_tokens=8,
    )  # fmt: skip
    text = report.read_text()
    assert "| accuracy |" in text and "| format rate |" in text
    assert "| observation recall (caption numbers seen) |" in text
    for picture in ("eval_before/eval.png", "eval_after/eval.png", "ladder.png",
                    "train/reward_curve.png"):  # fmt: skip
        assert picture in text
        assert (tmp_path / picture).stat().st_size > 0
    assert (tmp_path / "train" / "final" / "config.json").is_file()
    # the training signal: one table line per step, the groups with signal counted
    assert "| step | reward | sampled accuracy | groups with no signal |" in text
    assert "\n| 1 | " in text and " of 2 groups had some but not all completions right" in text
    assert "the pipeline end to end and the training signal below, not a gain" in text
    assert "After minus before, question by question: " in text and "McNemar p = " in text
    assert "95 % paired bootstrap interval [" in text
    assert "no change detected: the interval holds 0 (one question is 0.250 here)" in text
    rows = [
        json.loads(line) for line in (tmp_path / "data" / "rows.jsonl").read_text().splitlines()
    ]
    assert {r["family"] for r in rows} <= {"counting", "dice", "chart", "geometry"}
    assert {r["level"] for r in rows} <= {-1, 0} and not any(r.get("choices") for r in rows)
