"""``eager-llm baselines``: one report on a small synthetic dataset, and the bad-input paths
(one ``error:`` line, exit status 2)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from eager_llm.cli import app
from eager_llm.data.synthetic import write_amazon_2014

runner = CliRunner()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return str(write_amazon_2014(tmp_path_factory.mktemp("data"), users=60, items=30, seed=3))


def run(*args):
    return runner.invoke(app, ["baselines", *args])


def error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("error:")]


def test_writes_ranks_and_table_then_refuses_to_overwrite(dataset, tmp_path):
    out = tmp_path / "out"
    args = ["--dataset", dataset, "--out", str(out), "--split", "test", "--seen", "remove",
            "--sasrec-lengths", "none"]  # fmt: skip
    result = run(*args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "baselines.json").read_text())
    assert [r["method"] for r in report["results"]] == [
        "most popular", "Markov (co-occurrence)", "ItemKNN"]  # fmt: skip
    assert report["seen"] == "remove" and report["split"] == "test"
    for row in report["results"]:
        assert len(row["ranks"]) == report["n_users"]
        hits = sum(0 <= r < 10 for r in row["ranks"]) / report["n_users"]
        assert row["recall@10"] == pytest.approx(hits)
    assert "| ItemKNN |" in (out / "baselines.md").read_text()
    again = run(*args)
    assert again.exit_code == 2 and len(error_lines(again)) == 1
    assert "--overwrite" in error_lines(again)[0]
    assert run(*args, "--overwrite").exit_code == 0
    assert json.loads((out / "baselines.json").read_text())["tie_order"] == "file"


def test_reversed_tie_order_is_recorded(dataset, tmp_path):
    out = tmp_path / "out"
    result = run("--dataset", dataset, "--out", str(out), "--sasrec-lengths", "none",
                 "--tie-order", "reversed")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((out / "baselines.json").read_text())["tie_order"] == "reversed"
    assert "equal timestamps in reversed order" in (out / "baselines.md").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--split", "train"], "--split must be"),
        (["--seen", "mask"], "seen must be"),
        (["--tie-order", "random"], "--tie-order must be 'file' or 'reversed'"),
        (["--sasrec-lengths", "50,abc"], "is not a history length"),
        (["--sasrec-lengths", "0"], "--sasrec-lengths: must be at least 1"),
    ],
)
def test_bad_input_is_one_error_line_exit_2(dataset, tmp_path, extra, message):
    result = run("--dataset", dataset, "--out", str(tmp_path / "o"), *extra)
    assert result.exit_code == 2
    assert len(error_lines(result)) == 1 and message in error_lines(result)[0]
    assert not (tmp_path / "o" / "baselines.json").exists()


def test_unknown_dataset_is_one_error_line(tmp_path):
    result = run("--dataset", str(tmp_path / "nothing"), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and len(error_lines(result)) == 1
