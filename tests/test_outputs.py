"""The output rule of the verbs that write (issue 31, items 3, 6; model_zoo.outputs): what
is refused, and that --overwrite (or another folder) is then accepted. The refusals
themselves, one error line each with nothing written, are cases of test_bad_run_configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from model_zoo.outputs import OutputError, check_input_and_output, prepare_outputs
from observe_r1.cli import app as observe_app
from tests.observe_r1.training.test_trainer import TINY

ROOT = Path(__file__).parents[1]


def test_an_input_reached_through_dots_or_a_link_is_still_an_input(tmp_path):
    (tmp_path / "data").mkdir()
    rows = tmp_path / "data" / "rows.jsonl"
    rows.write_text("{}\n")
    (tmp_path / "link").symlink_to(tmp_path / "data")
    for out in (tmp_path / "data" / "sub" / "..", tmp_path / "link", tmp_path):
        with pytest.raises(OutputError, match="is or contains the input"):
            prepare_outputs(out, option="--out", inputs=[rows])
    assert prepare_outputs(tmp_path / "data" / "sub", option="--out", inputs=[rows]) == []


def test_earlier_outputs_are_refused_unless_overwrite(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "rows.jsonl").write_text("{}\n")
    (tmp_path / "notes.txt").write_text("mine\n")
    products = ("rows.jsonl", "images")
    with pytest.raises(OutputError, match=r"holds an earlier run's outputs \(images, rows.jsonl\)"):
        prepare_outputs(tmp_path, option="--out", products=products)
    found = prepare_outputs(tmp_path, option="--out", products=products, overwrite=True)
    assert [path.name for path in found] == ["images", "rows.jsonl"]


def test_synth_into_its_earlier_rows_needs_overwrite_then_writes_a_fresh_set(tmp_path):
    runner = CliRunner()
    out = tmp_path / "s"
    assert runner.invoke(observe_app, ["synth", "--out", str(out), "--n", "2"]).exit_code == 0
    first = (out / "rows.jsonl").read_text()
    again = runner.invoke(observe_app, ["synth", "--out", str(out), "--n", "3", "--seed", "1"])
    assert again.exit_code == 2 and (out / "rows.jsonl").read_text() == first
    args = ["synth", "--out", str(out), "--n", "3", "--seed", "1", "--overwrite"]
    assert runner.invoke(observe_app, args).exit_code == 0
    assert len((out / "rows.jsonl").read_text().splitlines()) == 3


def test_a_fifo_input_is_refused_without_opening_it(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OutputError, match="--input .*fifo: is not a regular file"):
        check_input_and_output(tmp_path / "fifo", tmp_path / "out.jsonl")


FIFO_SCRIPT = """
import json, sys
from typer.testing import CliRunner
from eager_llm.cli import app as eager
from observe_r1.cli import app as observe
results = {}
for case, (tool, args) in json.loads(sys.argv[1]).items():
    result = CliRunner().invoke(eager if tool == "eager" else observe, args)
    results[case] = [result.exit_code, result.stderr]
print(json.dumps(results))
"""


def test_fifo_inputs_are_refused_without_blocking(tmp_path):
    """Reading a FIFO blocks until a writer comes: each verb must refuse it unopened."""
    (tmp_path / "run" / "final").mkdir(parents=True)
    fifo, out = str(tmp_path / "fifo"), str(tmp_path / "out")
    os.mkfifo(fifo)
    cases = {
        "recommend": ("eager", ["recommend", "--run", str(tmp_path / "run"), "--input", fifo,
                                "--output", f"{out}.jsonl"]),
        "eval": ("observe", ["eval", "--model", "tiny-qwen2.5-vl", "--data", fifo, "--out", out]),
        "train_file": ("observe", ["train", "--config", str(TINY), "--output-dir", out,
                                   "--set", f"train_file={fifo}"]),
        "import": ("observe", ["import", "--format", "official", "--input", fifo, "--out", out]),
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", FIFO_SCRIPT, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=300,  # a verb that opened the FIFO would block forever: fail here instead
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        check=True,
    )
    for case, (code, stderr) in json.loads(done.stdout.splitlines()[-1]).items():
        assert code == 2 and len(stderr.splitlines()) == 1, (case, stderr)
        assert stderr.startswith("error: ") and "fifo: is not a regular file" in stderr, case
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fifo", "run"]
