"""experiments/observe_r1_evidence_report.py on synthetic per-row files: the two-level
interval covers 0 when nothing is planted and excludes it when an effect is, Holm's rule, the
detectable effect, and the page (pending arms, the primary verdicts)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location(
    "observe_r1_evidence_report", ROOT / "experiments" / "observe_r1_evidence_report.py"
)
report = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(report)

ARMS = [
    "observe-r1",
    "observe-r1-shuffled",
    "no-bonus",
    "no-weight",
    "no-observe",
    "grpo-think",
    "grpo-observe",
]


def draw(rng, n: int, real: float, grounded: float, seeds: int) -> np.ndarray:
    """(seeds, 2, n) 0/1: real and swap correctness. A row's swap answer equals its real one
    except that a share ``grounded`` of the rows is right only with the real image."""
    out = np.zeros((seeds, 2, n))
    for s in range(seeds):
        base = rng.random(n) < real - grounded  # right either way (text, prior)
        seen = rng.random(n) < grounded / max(1e-9, 1 - (real - grounded))
        out[s, 0] = base | seen
        out[s, 1] = base
    return out


def write(folder: Path, name: str, arm: str, seed, fmt: str, bits: np.ndarray, ids) -> None:
    record = {
        "arm": arm,
        "seed": seed,
        "format": fmt,
        "steps": 0 if seed is None else 60,
        "row_ids": ids,
        "correct": {k: "".join("1" if x else "0" for x in bits[i]) for i, k in
                    enumerate(("real", "swap"))},
        "formatted": "1" * len(ids),
        "mean_tokens": 50.0,
        "answer_distribution_accuracy": 0.2,
        "seconds": {"train_wall_s": 1800.0, "eval_wall_s": 1000.0},
        "machine": {"cpu": "Test CPU", "cpu_bf16": False, "threads": "1"},
        "commit": "abc1234",
        "validation": [[0, 0.2], [30, 0.3]],
        "zero_signal_step_share": 0.3,
        "bonus_rate": 0.5,
    }  # fmt: skip
    (folder / f"{name}.json").write_text(json.dumps(record))


def synthetic_results(folder: Path, *, skip: tuple[str, ...] = (), n: int = 240) -> None:
    """Observe-R1 with +0.30 image-grounded accuracy planted; every other arm and both
    starts drawn from one no-effect distribution (real 0.30, grounded 0)."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"id": f"test-{f}-{i}", "question": "How many?", "answer": str(i % 4 + 1),
         "family": f, "level": i % 3 - 1}
        for i, f in zip(range(n), ["counting", "dice", "chart", "geometry"] * n, strict=False)
    ]  # fmt: skip
    ids = [row["id"] for row in rows]
    (folder / "test_rows.json").write_text(json.dumps({"rows": rows}))
    plan = {"config": "configs/observe_r1/smol-cpu.yaml", "model": "smolvlm-dino", "sets": [],
            "steps": 60, "train_n": 72, "test_n": n, "valid_n": 40, "seeds": [1, 2, 3],
            "arms": ARMS, "families": "counting,dice,chart,geometry", "levels": "starter,1",
            "data_seed": 41, "valid_seed": 42, "eval_seed": 0, "image_ablation": "swap",
            "max_new_tokens": 96, "save_steps": 10}  # fmt: skip
    (folder / "plan.json").write_text(json.dumps(plan))
    for fmt in ("observe", "think"):
        write(folder, f"start-{fmt}", "start", None, fmt, draw(rng, n, 0.3, 0.0, 1)[0], ids)
    for arm in ARMS:
        planted = arm == "observe-r1"
        fmt = "think" if arm in ("grpo-think", "no-observe") else "observe"
        bits = draw(rng, n, 0.55 if planted else 0.3, 0.3 if planted else 0.0, 3)
        for seed in (1, 2, 3):
            if f"{arm}:{seed}" not in skip:
                write(folder, f"{arm}-s{seed}", arm, seed, fmt, bits[seed - 1], ids)


def test_null_interval_covers_zero_at_its_level():
    rng = np.random.default_rng(1)
    covered = 0
    trials = 40
    for trial in range(trials):
        a = draw(rng, 200, 0.3, 0.0, 3)[:, 0]
        b = draw(rng, 200, 0.3, 0.0, 3)[:, 0]
        r = report.two_level(a, b, resamples=300, seed=trial)
        covered += r["low"] <= 0 <= r["high"]
        assert r["low"] <= r["diff"] <= r["high"]
    assert covered >= 0.85 * trials


def test_planted_effect_is_detected_and_the_interval_holds_it():
    rng = np.random.default_rng(2)
    for trial in range(5):
        a = draw(rng, 240, 0.6, 0.3, 3)
        b = draw(rng, 240, 0.3, 0.0, 1)
        r = report.two_level(a[:, 0] - a[:, 1], b[:, 0] - b[:, 1], resamples=500, seed=trial)
        assert r["low"] > 0 and r["p"] < 0.01
        assert r["low"] <= 0.3 <= r["high"]


def test_seed_spread_widens_the_interval():
    """Seeds that disagree make a wider interval than seeds that agree, the same row noise."""
    rng = np.random.default_rng(3)
    rows = draw(rng, 300, 0.4, 0.0, 1)[0, 0]
    same = np.stack([rows, rows, rows])
    spread = np.stack([rows * (rng.random(300) < keep) for keep in (0.5, 1.0, 1.0)])
    spread[2] = np.maximum(rows, rng.random(300) < 0.4)
    zero = np.zeros((1, 300))
    narrow = report.two_level(same, zero, resamples=500)
    wide = report.two_level(spread, zero, resamples=500)
    assert wide["high"] - wide["low"] > 1.3 * (narrow["high"] - narrow["low"])


def test_page_states_the_planted_effect_and_the_null(tmp_path):
    synthetic_results(tmp_path / "res", skip=("no-weight:3",))
    page = report.build_page(tmp_path / "res", resamples=400)
    assert page.index("```bash") < page.index("| arm |")
    assert "Pending**: no-weight:3." in page
    assert "Power, planned from the start's rows" in page
    lines = page.splitlines()

    def row(arm: str, against: str, metric: str) -> str:
        (hit,) = [x for x in lines if f"| {arm} | {against} | {metric}" in x]
        return hit

    grounded = "image-grounded (real - swap)"
    assert "**detected**" in row("primary | Observe-R1 (full)", "start, observe format", grounded)
    assert "**detected**" in row("primary | Observe-R1 (full)", "GRPO, think format", grounded)
    null = row("secondary | GRPO, observe format (official baseline)", "start, observe format",
               grounded)  # fmt: skip
    assert "not detected" in null
    low, high = (float(x) for x in null.split("[")[1].split("]")[0].split(","))
    assert low <= 0 <= high
    # the family sizes are the plan's: 6 primary, 30 secondary, pending ones included
    assert "primary** family (6 tests)" in page and "secondary** family (30 tests)" in page
    assert "no-weight" not in page.split("Pending**")[0]


def test_rows_that_differ_from_the_test_rows_are_refused(tmp_path):
    synthetic_results(tmp_path / "res")
    path = tmp_path / "res" / "observe-r1-s1.json"
    record = json.loads(path.read_text())
    record["row_ids"] = record["row_ids"][::-1]
    path.write_text(json.dumps(record))
    with pytest.raises(SystemExit, match="not the test rows"):
        report.load(tmp_path / "res")
