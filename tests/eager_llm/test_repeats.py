"""``eager-llm repeat``: one train-and-evaluate run per seed, mean and std of each metric."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from eager_llm.cli import app
from eager_llm.evaluate import METRICS
from eager_llm.repeats import parse_seeds, summarise
from tests.eager_llm.training.toy import CONFIG, write_dataset

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def report(method_values, n_users=3):
    results = [{"method": m, **dict.fromkeys(METRICS, v)} for m, v in method_values.items()]
    return {"split": "test", "n_users": n_users, "results": results}


def test_parse_seeds():
    assert parse_seeds("0, 1,2") == (0, 1, 2)
    for text, message in [("0", "at least two"), ("0,x", "separated by commas"),
                          ("1,1", "twice"), ("0,-1", "separated by commas")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            parse_seeds(text)


def test_summary_is_the_mean_and_sample_std_per_method_and_metric():
    summary = summarise(
        {
            0: report({"run": 0.1, "pop": 0.5}),
            1: report({"run": 0.3, "pop": 0.5}),
            2: report({"run": 0.2, "pop": 0.5}),
        }  # fmt: skip
    )
    assert summary["seeds"] == [0, 1, 2] and list(summary["methods"]) == ["run", "pop"]
    run = summary["methods"]["run"]["recall@10"]
    assert run["values"] == [0.1, 0.3, 0.2]
    assert run["mean"] == pytest.approx(0.2) and run["std"] == pytest.approx(0.1)
    assert summary["methods"]["pop"]["ndcg@5"]["std"] == 0
    with pytest.raises(ValueError, match="seed 1: its evaluation ranks other methods"):
        summarise({0: report({"run": 0.1}), 1: report({"other": 0.1})})
    with pytest.raises(ValueError, match="seed 1: its evaluation has other users"):
        summarise({0: report({"run": 0.1}), 1: report({"run": 0.1}, n_users=2)})


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("repeat")
    result = cli("index", "--dataset", write_dataset(root / "data"), "--out", root / "index",
                 "--k", 4, "--k-core", 1, "--epochs", 2, "--cache-dir", root / "cache")  # fmt: skip
    assert result.exit_code == 0, result.output
    return root / "index"


def test_repeat_trains_anneals_and_evaluates_each_seed(index, tmp_path):
    out = tmp_path / "seeds"
    options = ["--index", index, "--max-steps", 1, "--anneal", "--beams", 10, "--limit-users", 3]
    result = cli("repeat", "--config", CONFIG, "--seeds", "0,3", "--output-dir", out, *options)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "seeds.json").read_text())
    assert summary["seeds"] == [0, 3] and summary["n_users"] == 3
    assert list(summary["methods"]) == [
        "EAGER-LLM (anneal)", "most popular", "SASRec", "w/o annealing (stage 1)"
    ]  # fmt: skip
    evals = [json.loads((out / f"seed-{s}" / "anneal" / "eval.json").read_text()) for s in (0, 3)]
    for position, metrics in enumerate(summary["methods"].values()):
        for metric, spread in metrics.items():
            values = [e["results"][position][metric] for e in evals]
            assert spread["values"] == values and spread["mean"] == pytest.approx(np.mean(values))
            assert spread["std"] == pytest.approx(np.std(values, ddof=1))
    for seed in (0, 3):
        for stage in ("stage1", "anneal"):
            fingerprint = json.loads(
                (out / f"seed-{seed}" / stage / "run_fingerprint.json").read_text()
            )
            assert fingerprint["config"]["seed"] == seed
    losses = [(out / f"seed-{s}" / "stage1" / "metrics.jsonl").read_text() for s in (0, 3)]
    assert losses[0] != losses[1]
    assert "± " in (out / "seeds.md").read_text() and "summary:" in result.output


def test_bad_options_are_one_error_line_before_any_run(index, tmp_path):
    out = tmp_path / "seeds"
    for extra, message in [
        (["--seeds", "0"], "error: --seeds '0': a mean and std need at least two seeds"),
        (["--seeds", "0,1", "--split", "train"], "error: --split 'train': test or valid"),
        (["--seeds", "0,1", "--set", "max_history=0"], "error: --set max_history=0: "),
    ]:
        result = cli("repeat", "--config", CONFIG, "--output-dir", out, "--index", index, *extra)
        assert result.exit_code == 2 and result.output.startswith(message), result.output
        assert len(result.output.splitlines()) == 1 and not out.exists()
