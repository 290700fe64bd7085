"""experiments/eager_recipe_search.py (the driver) on a fake command runner, and
experiments/eager_recipe_search_report.py (the page) on hand-made arm files: no training, no
data set, no model."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from model_zoo.significance import paired_bootstrap

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "eager_llm" / "smol-ml100k.yaml"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


driver = load("eager_recipe_search")
report = load("eager_recipe_search_report")


# -- the driver -------------------------------------------------------------------------------
def fake_stage(folder: Path, steps=(0, 75, 150), recalls=(0.03, 0.06, 0.08), best=150,
               batch=8, n_users=20) -> None:  # fmt: skip
    """What a finished `eager-llm train` / `anneal` leaves: metrics, per-user validation ranks,
    final/run_settings.json and a checkpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    metrics, ranks = [], []
    for step, recall in zip(steps, recalls, strict=True):
        if step:
            metrics.append({"step": step, "samples": step * batch, "loss": 1.0,
                            "samples_per_second": 0.5})  # fmt: skip
        metrics.append({"step": step, "samples": step * batch, "eval_recall@10": recall,
                        "eval_ndcg@10": recall / 2, "seconds": 10.0})  # fmt: skip
        hits = round(recall * n_users)
        ranks.append({"step": step, "ranks": [0] * hits + [None] * (n_users - hits)})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics))
    (folder / "validation_ranks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ranks))
    (folder / "final").mkdir(exist_ok=True)
    settings = {"best_checkpoint": str(folder / f"checkpoint-{best}"), "precision": "float32"}
    (folder / "final" / "run_settings.json").write_text(json.dumps(settings))
    (folder / f"checkpoint-{best}").mkdir(exist_ok=True)


class FakeRunner(driver.Runner):
    """Records the commands; each "finishes" its stage in the folder it names."""

    def __init__(self):
        self.commands: list[list[str]] = []
        self.reranks: list[dict] = []

    def command(self, command, log):
        self.commands.append(command)
        out = Path(command[command.index("--output-dir") + 1])
        if command[1] == "train":
            fake_stage(out)
        else:  # anneal / rl: step 0 (the model it starts from) and its end
            fake_stage(out, steps=(0, 30), recalls=(0.08, 0.09), best=30)

    def rerank(self, run, index, **options):
        self.reranks.append({"run": run, **options})
        return {"recall@10": 0.1, "ndcg@10": 0.05, "ranks": [0, 1] + [None] * 18}


@pytest.fixture
def folders(tmp_path):
    settings = driver.Settings(
        config=str(CONFIG),
        index=str(tmp_path / "base" / "index"),
        base=str(tmp_path / "base"),
        root=str(tmp_path / "search"),
        results=str(tmp_path / "results"),
        cli="eager-llm",
    )
    return tmp_path, settings


def finished_base(base: Path) -> None:
    fake_stage(base / "stage1")
    fake_stage(base / "anneal", steps=(0, 30), recalls=(0.08, 0.085), best=30)
    (base / "timings.txt").write_text(
        "5000 s: .venv/bin/eager-llm train --config C --index I --output-dir O\n"
        "900 s: .venv/bin/eager-llm anneal --config C --from F --output-dir O\n"
    )
    (base / "run.sh").write_text("export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1\n")


def test_the_running_base_is_never_touched(folders):
    tmp, settings = folders
    base = tmp / "base"
    (base / "stage1" / "checkpoint-0").mkdir(parents=True)  # stage 1 under way elsewhere
    runner = FakeRunner()
    d = driver.Driver(settings, runner)
    assert d.run("recipe", 0).startswith("skipped")
    assert d.run("eval-allowed", 0).startswith("skipped")  # needs the base's stage 2
    assert d.run("rl", 0).startswith("skipped")
    assert runner.commands == [] and runner.reranks == []
    assert not (tmp / "results" / "recipe-s0.json").exists()
    assert sorted(p.name for p in base.iterdir()) == ["stage1"]  # nothing written into it


def test_train_base_only_resumes_it_with_run_sh_command(folders):
    tmp, settings = folders
    (tmp / "base" / "stage1" / "checkpoint-0").mkdir(parents=True)
    runner = FakeRunner()
    d = driver.Driver(dataclasses.replace(settings, train_base=True), runner)
    assert d.run("recipe", 0) == "wrote"
    train, anneal = runner.commands
    assert train[1] == "train" and "--resume" in train and "--set" not in train
    assert train[train.index("--output-dir") + 1] == str(tmp / "base" / "stage1")
    assert anneal[1] == "anneal" and "--resume" not in anneal  # its folder did not exist
    assert anneal[anneal.index("--from") + 1] == str(tmp / "base" / "stage1")
    assert not any("--overwrite" in c for c in runner.commands)
    assert (tmp / "base" / "stage1" / "checkpoint-150").is_dir()  # the base keeps its own


def test_an_arm_trains_both_stages_then_writes_its_file_and_is_skipped_after(folders):
    tmp, settings = folders
    finished_base(tmp / "base")
    runner = FakeRunner()
    d = driver.Driver(settings, runner)
    assert d.run("recipe", 0) == "wrote"  # read from the finished base folder, not run
    assert runner.commands == []
    base_record = json.loads((tmp / "results" / "recipe-s0.json").read_text())
    assert base_record["seconds"] == {"stage1_wall_s": 5000, "anneal_wall_s": 900}
    assert base_record["threads"] == "1"

    assert d.run("seqrec-only", 0) == "wrote"
    train, anneal = runner.commands
    index = str(tmp / "base" / "index")
    assert train[:2] == ["eager-llm", "train"] and train[train.index("--index") + 1] == index
    assert "tasks=[seqrec]" in train and "seed=0" in train and "--resume" not in train
    assert train[train.index("--output-dir") + 1] == str(
        tmp / "search" / "seqrec-only-s0" / "stage1"
    )
    assert "tasks=[seqrec]" not in anneal and "seed=0" in anneal  # a stage-1-only key
    assert anneal[anneal.index("--from") + 1] == str(tmp / "search" / "seqrec-only-s0" / "stage1")
    record = json.loads((tmp / "results" / "seqrec-only-s0.json").read_text())
    assert record["overrides"] == ["tasks=[seqrec]"]
    assert record["protocol"] == {"seen": "keep", "beam_scores": "vocabulary"}
    assert record["valid_users"] == 500 and record["valid_seed"] == 0 and record["batch"] == 8
    # stage 1's three points, then stage 2's end shifted by stage 1's 1,200 samples
    assert [p[:2] for p in record["curve"]] == [[0, 0.03], [600, 0.06], [1200, 0.08],
                                                [1440, 0.09]]  # fmt: skip
    assert record["best"]["stage"] == "anneal" and record["best"]["samples"] == 1440
    assert record["best"]["ranks"] == [0, 0] + [None] * 18  # anneal's checkpoint-30
    assert set(record["seconds"]) == {"stage1_wall_s", "stage1_cpu_s", "anneal_wall_s",
                                      "anneal_cpu_s"}  # fmt: skip
    assert record["cpu"] and record["commit"]
    # checkpoints of a finished arm go (final/ stays); a second call is a no-op
    assert not list((tmp / "search" / "seqrec-only-s0").glob("*/checkpoint-*"))
    assert (tmp / "search" / "seqrec-only-s0" / "stage1" / "final").is_dir()
    assert d.run("seqrec-only", 0) == "done"
    assert len(runner.commands) == 2
    assert not any("--overwrite" in c for c in runner.commands)


def test_a_killed_arm_resumes_and_stage_2_keeps_its_block_keys(folders):
    tmp, settings = folders
    finished_base(tmp / "base")
    (tmp / "search" / "steps-900-s1" / "stage1" / "checkpoint-150").mkdir(parents=True)
    runner = FakeRunner()
    driver.Driver(settings, runner).run("steps-900", 1)
    train, anneal = runner.commands
    assert "--resume" in train and "max_steps=900" in train and "seed=1" in train
    assert "max_steps=900" not in anneal  # the anneal: block sets its own 30 steps
    assert "eval_steps=150" in anneal  # a top-level key stage 2 inherits
    # an arm whose stage 1 is done only anneals
    finished = tmp / "search" / "history-10-s0"
    fake_stage(finished / "stage1")
    runner.commands.clear()
    driver.Driver(settings, runner).run("history-10", 0)
    assert [c[1] for c in runner.commands] == ["anneal"]
    assert "max_history=10" in runner.commands[0]


def test_eval_arms_rerank_the_base_model_and_rl_starts_from_it(folders):
    tmp, settings = folders
    finished_base(tmp / "base")
    runner = FakeRunner()
    d = driver.Driver(settings, runner)
    assert d.run("eval-remove-allowed", 0) == "wrote"
    (call,) = runner.reranks
    assert call["run"] == tmp / "base" / "anneal"
    assert (call["seen"], call["beam_scores"], call["seed"], call["users"]) == (
        "remove", "allowed", 0, 500
    )  # fmt: skip
    record = json.loads((tmp / "results" / "eval-remove-allowed-s0.json").read_text())
    assert record["protocol"] == {"seen": "remove", "beam_scores": "allowed"}
    assert record["curve"] == [[1440, 0.1, 0.05, "rerank", 0]]
    assert record["best"]["ranks"][:3] == [0, 1, None] and record["of"] == "recipe-s0"
    assert runner.commands == []
    assert d.run("rl", 0) == "wrote"
    (rl,) = runner.commands
    assert rl[1] == "rl" and rl[rl.index("--from") + 1] == str(tmp / "base" / "anneal")
    assert "beams=8" in rl and "max_steps=100" in rl
    assert json.loads((tmp / "results" / "rl-s0.json").read_text())["curve"][-1][0] == 1440 + 240


def test_every_override_is_an_existing_config_key():
    from eager_llm.rl.config import RLConfig
    from eager_llm.training.config import EagerConfig

    keys = {f.name for f in dataclasses.fields(EagerConfig)}
    rl_keys = {f.name for f in dataclasses.fields(RLConfig)}
    for name, arm in driver.ARMS.items():
        for key in driver.overrides(arm.sets):
            assert key in (rl_keys if arm.kind == "rl" else keys), (name, key)


def test_plan_prints_every_arm_with_its_cost(folders, capsys):
    tmp, settings = folders
    finished_base(tmp / "base")
    driver.main(["--plan", "--config", settings.config, "--base", settings.base,
                 "--root", settings.root, "--results", settings.results,
                 "--define", "combo", "tasks=[seqrec]", "max_history=10"])  # fmt: skip
    out = capsys.readouterr().out
    for arm in [*driver.ARMS, "combo"]:
        assert f"{arm}-s0 " in out
    assert "core-hours" in out and "base: stage1 done, anneal done" in out
    # the base's measured pace: 0.5 samples/s -> 16 s a step, 10 s a validation
    assert "16.0 s a stage-1 step" in out and "10 s a validation" in out
    assert not (tmp / "results").exists()  # --plan writes nothing


# -- the report -------------------------------------------------------------------------------
N = 400
TUNED_PAGE = """# Tuned
### History items kept
| method | chosen on valid |
| --- | --- |
| Markov (co-occurrence) | last=20, decay=0.6, window=3, normalise=False | 0.1 |
### History items removed
| Markov (co-occurrence) | last=20, decay=0.8, window=10, normalise=True | 0.2 |
"""


def ranks_with(hits: np.ndarray) -> list:
    return [0 if h else None for h in hits]


def arm_file(results: Path, arm: str, hits: np.ndarray, curve, *, kind="train", seen="keep",
             lever="x", seed=0) -> None:  # fmt: skip
    best = max(curve, key=lambda p: p[1])
    record = {
        "arm": arm, "seed": seed, "kind": kind, "lever": lever, "note": "", "overrides":
        [f"{arm}=1"], "protocol": {"seen": seen, "beam_scores": "vocabulary"},
        "valid_users": N, "valid_seed": seed, "batch": 8,
        "curve": [[x, y, y / 2, "stage1", i] for i, (x, y) in enumerate(curve)],
        "stages": {"stage1": {"samples": curve[-1][0]}},
        "best": {"stage": "stage1", "step": 0, "samples": best[0], "recall@10": float(hits.mean()),
                 "ndcg@10": float(hits.mean()) / 2, "ranks": ranks_with(hits)},
        "seconds": {"stage1_wall_s": 3600.0, "stage1_cpu_s": 3500.0}, "threads": "1",
        "cpu": "Test CPU", "commit": "abc1234",
    }  # fmt: skip
    (results / f"{arm}-s{seed}.json").write_text(json.dumps(record))


@pytest.fixture
def fake_results(tmp_path):
    rng = np.random.default_rng(3)
    results = tmp_path / "results"
    results.mkdir()
    base = rng.random(N) < 0.10
    better = base | (rng.random(N) < 0.25)  # +~0.22: planted
    same = base.copy()
    same[rng.choice(N, 6, replace=False)] ^= True  # noise only
    samples = [0, 600, 1200, 1800, 2400]
    log_curve = [(0, 0.02)] + [(x, -0.06 + 0.02 * math.log(x)) for x in samples[1:]]
    arm_file(results, "recipe", base, [(0, 0.02), (600, 0.05), (2400, 0.1)], lever="base")
    arm_file(results, "seqrec-only", better, log_curve, lever="seqrec share")
    arm_file(results, "eval-allowed", same, [(2640, float(same.mean()))], kind="eval",
             lever="beam scores")  # fmt: skip
    cooc = rng.random(N) < 0.15
    baselines = {"seed": 0, "n_users": N, "max_history": 20, "users": list(range(N)),
                 "configs": {}}  # fmt: skip
    for seen in ("keep", "remove"):
        baselines[seen] = {
            "most popular": ranks_with(rng.random(N) < 0.04),
            report.COOC_DEFAULT: ranks_with(rng.random(N) < 0.12),
            report.COOC_TUNED: ranks_with(cooc),
            "SASRec": ranks_with(rng.random(N) < 0.15),
        }
    (results / "baselines-s0.json").write_text(json.dumps(baselines))
    plan = {"seeds": [0], "arms": {
        name: {"kind": "train", "lever": "x", "note": "", "sets": [f"{name}=1"]}
        for name in ("recipe", "eval-allowed", "seqrec-only", "history-10")}}  # fmt: skip
    (results / "plan.json").write_text(json.dumps(plan))
    page = tmp_path / "tuned.md"
    page.write_text(TUNED_PAGE)
    return results, page, {"base": base, "better": better, "same": same, "cooc": cooc}


def test_the_page_has_every_arm_its_intervals_and_the_pending_ones(fake_results, tmp_path):
    results, tuned_page, hits = fake_results
    plot = tmp_path / "curves.png"
    page = report.build_page(results, index=None, plot=plot, baselines_page=tuned_page,
                             resamples=2000)  # fmt: skip
    assert page.startswith("# EAGER-LLM recipe search")
    assert page.index("```bash") < page.index("| ---")  # the command before the first table
    # every planned arm has a row in the arm table, the pending one says so
    arm_rows = [line for line in page.splitlines() if line.startswith("| history-10-s0 |")]
    assert arm_rows and "pending" in arm_rows[0]
    assert "**pending**: history-10-s0" in page
    # the interval against the base is the paired bootstrap of the per-user hits
    diff, low, high = paired_bootstrap(hits["better"].astype(float), hits["base"].astype(float),
                                       resamples=2000)  # fmt: skip
    seqrec_row = next(line for line in page.splitlines() if line.startswith("| seqrec-only-s0 |"))
    assert f"{diff:+.3f} [{low:+.3f}, {high:+.3f}]" in seqrec_row
    assert seqrec_row.count("**detected** (Holm)") >= 1
    eval_row = next(line for line in page.splitlines() if line.startswith("| eval-allowed-s0 |"))
    assert "not detected (smallest detectable effect 0." in eval_row
    base_row = next(line for line in page.splitlines() if line.startswith("| recipe-s0 |"))
    assert base_row.split(" | ")[7] == "-"  # not compared with itself
    # the tuned co-occurrence chain was read from the page and is the target line
    assert "last=20, decay=0.6, window=3, normalise=False" in page
    assert f"vs {report.COOC_TUNED}" in page
    assert "Holm's step-down rule over the arms: every arm against the base (3 tests)" in page
    assert plot.is_file() and plot.stat().st_size > 1000


def test_the_extrapolation_recovers_a_log_linear_slope(fake_results):
    results, tuned_page, hits = fake_results
    fit = report.fit_log_curve([(0, 0.02)] + [(x, 0.01 + 0.02 * math.log(x))
                                              for x in (600, 1200, 1800, 2400)])  # fmt: skip
    assert fit["b"] == pytest.approx(0.02) and fit["a"] == pytest.approx(0.01)
    assert fit["se_b"] == pytest.approx(0, abs=1e-9) and len(fit["points"]) == 4
    need = report.samples_to_reach(fit, 0.01 + 0.02 * math.log(10_000))
    assert need == pytest.approx(10_000)
    assert report.samples_to_reach({"a": 0.1, "b": -0.01}, 0.2) is None  # a falling curve
    page = report.build_page(results, index=None, plot=None, baselines_page=tuned_page,
                             resamples=500)  # fmt: skip
    section = page[page.index("## Extrapolation") : page.index("## What limits it")]
    assert "Best arm: **seqrec-only-s0**" in section
    assert "b = 0.0200" in section and "a = -0.0600" in section
    # its best point is planted above the co-occurrence line: nothing to extrapolate
    assert "already at or above the co-occurrence (tuned) line" in section
    # below the line: the samples where the fit meets it
    record = json.loads((results / "seqrec-only-s0.json").read_text())
    record["best"]["recall@10"] = 0.096  # the curve's last point, below the line
    (results / "seqrec-only-s0.json").write_text(json.dumps(record))
    page = report.build_page(results, index=None, plot=None, baselines_page=tuned_page,
                             resamples=500)  # fmt: skip
    section = page[page.index("## Extrapolation") : page.index("## What limits it")]
    target = hits["cooc"].mean()
    expected = math.exp((target + 0.06) / 0.02)  # ~19,000 samples
    assert f"({target:.4f}) on the fit: {expected:,.0f} samples" in section
    assert "curves flatten" in section and "x the 2,400 seen" in section


def test_holm_tuned_page_and_alignment_of_other_seeds(tmp_path):
    assert report.holm([0.01, 0.04, 0.03]) == [True, False, False]
    assert report.holm([0.001, 0.02, 0.04]) == [True, True, True]
    plan = report.load_plan(tmp_path)  # no plan.json: the driver's arms, seed 0
    assert list(plan["arms"]) == list(driver.ARMS) and plan["seeds"] == [0]
    (tmp_path / "none.md").write_text("# nothing\n")
    assert report.tuned_markov(tmp_path / "none.md") == {"keep": None, "remove": None}
    a = {"valid_seed": 1, "best": {"ranks": [0, 1, None]}}
    b = {"valid_seed": 0, "best": {"ranks": [5, None, 2, 3]}}
    users = {1: [7, 3, 9], 0: [3, 4, 7, 8]}
    assert report.aligned(a, b, users) == ([0, 1], [2, 5])  # users 7 and 3 in both samples


def test_the_rerank_reproduces_the_runs_own_validation(tmp_path):
    """The eval arms' re-ranking (the real Runner.rerank) of a finished tiny run gives the
    per-user ranks that run's last validation wrote, on the same users."""
    from typer.testing import CliRunner

    from eager_llm.cli import app
    from eager_llm.training.run_log import read_validation_ranks
    from tests.eager_llm.training.toy import CONFIG as TINY
    from tests.eager_llm.training.toy import toy_index

    index = toy_index(tmp_path)
    sets = ["eval_strategy=steps", "eval_steps=2", "valid_users=4", "valid_beams=10"]
    args = ["train", "--config", TINY, "--index", index, "--output-dir", tmp_path / "run",
            "--max-steps", 2] + [x for kv in sets for x in ("--set", kv)]  # fmt: skip
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    options = {"seed": 0, "users": 4, "beams": 10, "batch_size": 16}
    found = driver.Runner().rerank(
        tmp_path / "run", index, seen="keep", beam_scores="vocabulary", **options
    )
    expected = read_validation_ranks(tmp_path / "run")[2]
    assert found["ranks"] == [None if math.isinf(r) else int(r) for r in expected]
    assert found["recall@10"] == pytest.approx(np.mean(expected < 10))
    removed = driver.Runner().rerank(
        tmp_path / "run", index, seen="remove", beam_scores="allowed", **options
    )
    assert len(removed["ranks"]) == 4


def test_a_failed_arm_does_not_stop_the_next(folders, monkeypatch):
    import subprocess

    tmp, settings = folders
    finished_base(tmp / "base")

    class Failing(FakeRunner):
        def command(self, command, log):
            if "max_history=10" in command:
                raise subprocess.CalledProcessError(2, command)
            super().command(command, log)

    runner = Failing()
    with pytest.raises(SystemExit, match="failed: history-10-s0"):
        driver.main(["history-10", "seqrec-heavy", "--config", settings.config, "--base",
                     settings.base, "--root", settings.root, "--results", settings.results,
                     "--index", settings.index], runner)  # fmt: skip
    assert (tmp / "results" / "seqrec-heavy-s0.json").is_file()
    assert not (tmp / "results" / "history-10-s0.json").exists()
    assert set(json.loads((tmp / "results" / "plan.json").read_text())["arms"]) >= {"rl"}
