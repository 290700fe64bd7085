"""experiments/gpu_check.py's pure parts: pins, weight changes, rates, step results, page.
(The check itself runs with ``make gpu-check GPU_DEVICE=cpu``, about two minutes.)"""

from __future__ import annotations

import importlib.util
from argparse import Namespace
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location(
        "gpu_check", REPO / "experiments" / "gpu_check.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_versions_are_judged_against_the_project_pins(check):
    pins = check.project_pins((REPO / "pyproject.toml").read_text())
    assert pins["torch"] == "==2.13.*" and pins["trl"] and pins["math-verify"]
    assert check.pin_verdict("2.11.0+cu130", pins["torch"]) == "OUTSIDE the pin (==2.13.*)"
    assert check.pin_verdict("2.13.0+cpu", pins["torch"]) == "inside the pin"
    assert check.pin_verdict(None, pins["trl"]) == "missing"
    assert check.pin_verdict("1.0", None) == "not pinned"


def test_weight_changes_count_moved_tensors_on_shared_names_and_shapes(check):
    before = {"a": torch.zeros(2), "b": torch.ones(2), "c": torch.zeros(3), "i": torch.tensor([1])}
    after = {
        "a": torch.zeros(2),
        "b": torch.full((2,), 2.0),
        "c": torch.zeros(4),
        "i": torch.tensor([2]),
    }
    changes = check.weight_changes(before, after)
    assert changes == {"moved": 1, "compared": 2, "dtypes": ["float32", "int64"], "unmoved": ["a"]}


def test_steady_rate_leaves_the_first_step_out(check):
    assert check.steady_rate([10.0, 0.5, 0.5]) == pytest.approx(2.0)
    assert check.steady_rate([0.25]) == pytest.approx(4.0)
    assert check.steady_rate([]) is None


def test_a_step_is_ok_only_when_it_finished_and_its_checks_held(check):
    assert check.status_of(0, False, {"ok": True}) == "ok"
    assert check.status_of(0, False, {"ok": False}) == "FAILED"
    assert check.status_of(1, False, None) == "FAILED"
    assert check.status_of(None, True, None) == "TIMEOUT"


def test_a_cpu_page_says_it_has_not_run_on_a_gpu_and_names_failures(check):
    args = Namespace(out=Path("out"), budget=60.0, step_limit=30.0)
    versions = {"ok": True, "facts": {"gpu": "none"}, "versions": [["trl", "-", "x", "missing"]]}
    steps = [
        {"name": "versions", "status": "ok", "seconds": 1.0, "result": versions},
        {"name": "eager-eval", "status": "TIMEOUT", "seconds": 30.0, "result": None,
         "log_tail": "killed"},
    ]  # fmt: skip
    page = check.render_page("cpu", steps, args, total=31.0)
    assert page.startswith("# GPU check") and "```bash\nmake gpu-check GPU_DEVICE=cpu" in page
    assert "**This page has NOT run on a GPU.**" in page
    assert "| eager-eval | TIMEOUT | 30.0 |" in page and "Failed steps: eager-eval." in page
    assert "| trl | - | x | missing |" in page
    assert "NOT run on a GPU" not in check.render_page("cuda", steps, args, total=31.0)
