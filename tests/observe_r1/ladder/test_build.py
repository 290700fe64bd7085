"""The NeuraLadder builder end to end on the tiny VLMs: files, cache, resume, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from observe_r1.cli import app
from observe_r1.data.rows import InputError, RowError, read_rows
from observe_r1.data.synth import synthesize
from observe_r1.ladder import steps
from observe_r1.ladder.build import LadderConfig, build_ladder, side_paths
from observe_r1.ladder.cache import RolloutCache, rollout_key
from observe_r1.ladder.rollouts import Completion, RolloutEngine, Sampling, step_by_step_messages

MODEL = "tiny-qwen2.5-vl"


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models generate ~100x faster on one thread than on two contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def hashed_judge(monkeypatch):
    """Stand-in judges (a random model is never right): greedy answers are wrong, and about
    half of the sampled responses count as correct, so difficulties spread over levels."""

    def half(text: str, gold: str) -> bool:
        return hashlib.sha256(text.encode()).digest()[0] % 2 == 0

    monkeypatch.setattr(steps, "answer_only_correct", lambda text, gold: False)
    monkeypatch.setattr(steps, "response_correct", half)


class Interrupted(Exception):
    pass


class CountingEngine(RolloutEngine):
    """Counts generate calls and prompts; raises after `fail_after` calls (a kill)."""

    def __init__(self, model: str = MODEL, fail_after: int | None = None):
        super().__init__(model, device="cpu")
        self.calls = self.prompts = 0
        self.fail_after = fail_after

    def generate(self, prompts, rows, sampling):
        if self.fail_after is not None and self.calls == self.fail_after:
            raise Interrupted
        self.calls += 1
        self.prompts += len(prompts)
        return super().generate(prompts, rows, sampling)


def make_config(tmp_path, n=8, out="ladder.jsonl", **overrides):
    data = tmp_path / "data" / "rows.jsonl"
    if not data.exists():
        synthesize(data.parent, n, seed=0)
    settings = {"rollouts": 4, "max_new_tokens": 6, "answer_max_new_tokens": 4, "batch_size": 3}
    return LadderConfig(input=data, model=MODEL, out=tmp_path / out, **(settings | overrides))


def output(config):
    return [json.loads(line) for line in config.out.read_text().splitlines()]


@pytest.mark.parametrize("model", [MODEL, "tiny-llava"])
def test_engine_answers_each_prompt_n_times(tmp_path, model):
    rows = read_rows(synthesize(tmp_path, 2)).rows
    engine = RolloutEngine(model, device="cpu")
    sampling = Sampling(n=3, do_sample=True, max_new_tokens=5)
    results = engine.generate([step_by_step_messages(r) for r in rows], rows, sampling)
    assert [len(r) for r in results] == [3, 3]
    assert all(isinstance(c.text, str) and 1 <= c.tokens <= 5 for r in results for c in r)


def test_build_writes_ladder_stats_plot_and_cache(tmp_path, hashed_judge):
    config = make_config(tmp_path, n=10)
    stats = build_ladder(config, CountingEngine())
    rows = output(config)
    paths = side_paths(config.out)
    assert paths["plot"].stat().st_size > 0
    assert json.loads(paths["stats"].read_text()) == stats
    assert len(rows) == stats["output_rows"] == 10 - stats["removed"]["easy_low_complexity"]
    assert stats["removed"]["not_verifiable"] == stats["removed"]["greedy_correct"] == 0
    assert sum(level["rows"] for level in stats["levels"]) == len(rows)
    for row in rows:
        assert row["difficulty"] == 1 - row["n_correct"] / 4 == row["difficulty_level"] / 4
        assert row["complexity"] == row["mean_tokens"] <= 6
        assert row["needs_review"] == (row["n_correct"] == 0)
        assert {"id", "image", "question", "answer", "family", "level"} <= row.keys()
    cached = RolloutCache(paths["cache"])
    assert len(cached) == 10 + 10  # one greedy and one sampled entry per row
    assert stats["rollouts"]["generated"] == 10 * 1 + 10 * 4


def test_rerun_is_served_by_the_cache(tmp_path, hashed_judge):
    config = make_config(tmp_path)
    build_ladder(config, CountingEngine())
    first = config.out.read_bytes()
    engine = CountingEngine()
    stats = build_ladder(config, engine)
    assert engine.calls == 0 and engine.model is None  # not even loaded
    assert stats["rollouts"]["generated"] == 0 and stats["rollouts"]["cached"] == 8 + 8 * 4
    assert config.out.read_bytes() == first


def test_resume_after_an_interruption_generates_only_the_rest(tmp_path, hashed_judge):
    whole = make_config(tmp_path, out="whole.jsonl", batch_size=1)
    uninterrupted = CountingEngine()
    build_ladder(whole, uninterrupted)
    assert uninterrupted.calls == 8 + 8  # batch size 1: greedy and sampled pass, 8 rows each

    resumed = make_config(tmp_path, out="resumed.jsonl", batch_size=1)
    with pytest.raises(Interrupted):
        build_ladder(resumed, CountingEngine(fail_after=11))  # mid-way through the rollouts
    engine = CountingEngine()
    build_ladder(resumed, engine)
    assert engine.calls == 16 - 11
    assert output(resumed) == output(whole)  # same samples: seeded per batch


def test_cache_drops_a_line_cut_by_a_kill_and_keys_ignore_the_answer(tmp_path):
    rows = read_rows(synthesize(tmp_path / "data", 1)).rows
    cache = RolloutCache(tmp_path / "cache")
    sampling = Sampling(n=1, do_sample=False, max_new_tokens=4)
    key = rollout_key("m", rows[0], step_by_step_messages(rows[0]), sampling)
    cache.put(key, [Completion("hi", 2)])
    with cache.path.open("a") as handle:
        handle.write('{"key": "half-writ')
    reloaded = RolloutCache(tmp_path / "cache")
    assert len(reloaded) == 1 and reloaded.get(key) == [Completion("hi", 2)]
    reloaded.put("other", [Completion("x", 1)])
    assert len(RolloutCache(tmp_path / "cache")) == 2
    assert (
        rollout_key("m", {**rows[0], "answer": "99"}, step_by_step_messages(rows[0]), sampling)
        == key
    )
    assert rollout_key("other-model", rows[0], step_by_step_messages(rows[0]), sampling) != key
    hotter = Sampling(n=1, do_sample=True, max_new_tokens=4, temperature=0.7)
    assert rollout_key("m", rows[0], step_by_step_messages(rows[0]), hotter) != key


def test_model_id_follows_the_model_files(tmp_path):
    from model_zoo import resolve

    folder = tmp_path / "model"
    shutil.copytree(resolve(MODEL), folder)
    before = RolloutEngine(str(folder)).model_id
    assert before == RolloutEngine(str(folder)).model_id
    (folder / "config.json").write_text((folder / "config.json").read_text() + " ")
    assert RolloutEngine(str(folder)).model_id != before
    assert RolloutEngine("org/not-on-disk", precision="fp32").model_id == "org/not-on-disk"
    assert RolloutEngine("org/not-on-disk", precision="bf16").model_id == "org/not-on-disk/bf16"


def test_model_id_sees_a_change_in_the_middle_of_large_weights(tmp_path):
    """Retraining changes tensors inside a large file while its header and first and last
    MiB stay put (the zoo's fast damage check cannot tell); the identity must see it."""
    folder = tmp_path / "model"
    folder.mkdir()
    weights = bytearray(b"w" * (12 << 20))
    (folder / "model.safetensors").write_bytes(weights)
    before = RolloutEngine(str(folder)).model_id
    weights[6 << 20] ^= 1
    (folder / "model.safetensors").write_bytes(weights)
    assert RolloutEngine(str(folder)).model_id != before


def test_unverifiable_and_greedy_correct_rows_are_counted(tmp_path, monkeypatch):
    synthesize(tmp_path / "data", 6, seed=0)
    path = tmp_path / "data" / "rows.jsonl"
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "answer": "yes"})  # a word: not verifiable by default
    path.write_text("\n".join(lines) + "\n")
    second_id = json.loads(lines[1])["id"]
    monkeypatch.setattr(steps, "response_correct", lambda text, gold: False)
    greedy_right = {"n": 0}

    def one_right(text, gold):  # the first greedy answer judged counts as correct
        greedy_right["n"] += 1
        return greedy_right["n"] == 1

    monkeypatch.setattr(steps, "answer_only_correct", one_right)
    config = make_config(tmp_path, rollouts=2)
    stats = build_ladder(config, CountingEngine())
    assert stats["removed"]["not_verifiable"] == 1 and stats["removed"]["greedy_correct"] == 1
    assert second_id not in {row["id"] for row in output(config)}
    assert stats["output_rows"] == 4 and stats["needs_review"] == 4


def test_without_greedy_filter_every_verifiable_row_is_scored(tmp_path, hashed_judge):
    config = make_config(tmp_path, greedy_filter=False)
    engine = CountingEngine()
    stats = build_ladder(config, engine)
    assert engine.calls == 3  # 8 rows in batches of 3, the sampled pass only
    assert stats["scored_rows"] == 8 and all(r["greedy_correct"] is None for r in output(config))


def test_stats_show_sampled_accuracy_per_level_and_family(tmp_path, hashed_judge):
    data = tmp_path / "data" / "rows.jsonl"
    synthesize(data.parent, 12, seed=0, levels=(-1, 0, 1), choice_share=0.3)
    config = make_config(tmp_path, greedy_filter=False)
    build_ladder(config, CountingEngine())
    stats = json.loads(side_paths(config.out)["stats"].read_text())
    table = stats["sampled_accuracy"]
    scored = stats["scored_rows"]  # all rows, also easy ones the ladder then drops
    assert table["open"]["all"]["rows"] + table["choice"]["all"]["rows"] == scored == 12
    for kind in ("open", "choice"):
        cells = table[kind]["by_level"]
        assert set(cells) <= {"-1", "0", "1"}
        assert sum(cell["rows"] for cell in cells.values()) == table[kind]["all"]["rows"]
        nested = table[kind]["by_family_level"]
        assert sum(c["rollouts"] for f in nested.values() for c in f.values()) == 4 * sum(
            cell["rows"] for cell in cells.values()
        )
    for row in output(config):  # every kept row is counted in its own cell
        kind = "choice" if row.get("choices") else "open"
        assert table[kind]["by_family_level"][row["family"]][str(row["level"])]["rows"] >= 1


def test_size_samples_in_order(tmp_path, hashed_judge):
    config = make_config(tmp_path, n=10, size=5)
    stats = build_ladder(config, CountingEngine())
    assert (
        stats["output_rows"] == 5
        and stats["removed"]["sampled_out"] == 10 - 5 - (stats["removed"]["easy_low_complexity"])
    )


def write_bad(tmp_path, bad_line: str):
    path = synthesize(tmp_path / "data", 3, seed=0)
    lines = path.read_text().splitlines()
    lines.insert(2, bad_line)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        ('{"id": "x", "image": "images/nope.png"', "Expecting"),
        (
            '{"id": "x", "image": "images/nope.png", "question": "q?", "answer": "1"}',
            "no such file",
        ),
        (
            '{"id": "x", "image": "images/train-dice-2.png", "question": "q?"}',
            "missing field 'answer'",
        ),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, bad_line, reason):
    path = write_bad(tmp_path, bad_line)
    config = LadderConfig(input=path, model=MODEL, out=tmp_path / "ladder.jsonl")
    with pytest.raises(RowError, match=f"rows.jsonl:3: .*{reason}"):
        build_ladder(config, CountingEngine())
    result = CliRunner().invoke(
        app, ["ladder", "--input", str(path), "--model", MODEL, "--out", str(tmp_path / "o.jsonl")]
    )
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and f"{path}:3: " in result.output


def test_cli_skips_invalid_rows_and_reports(tmp_path):
    path = write_bad(tmp_path, "not json")
    out = tmp_path / "ladder.jsonl"
    args = ["ladder", "--input", str(path), "--model", MODEL, "--out", str(out)]
    args += ["--rollouts", "2", "--max-new-tokens", "4", "--skip-invalid"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "invalid 1" in result.output and "spearman(level, difficulty)" in result.output
    stats = json.loads(side_paths(out)["stats"].read_text())
    assert stats["removed"]["invalid"] == 1 and stats["invalid_rows"][0].endswith(
        "Expecting value: line 1 column 1 (char 0)"
    )


def test_the_ladders_precision_is_checked_and_reaches_its_engine(tmp_path, monkeypatch):
    from observe_r1.ladder import build

    with pytest.raises(InputError, match="--precision: must be auto, fp32 or bf16"):
        LadderConfig(input=tmp_path / "rows.jsonl", model="m", out=tmp_path / "l.jsonl",
                     precision="fp16")  # fmt: skip
    made = []

    class Refused(RolloutEngine):
        def __init__(self, *args, **kwargs):
            made.append(kwargs["precision"])
            raise InputError("stop here")

    monkeypatch.setattr(build, "RolloutEngine", Refused)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "question": "What is 2 + 3?", "answer": "5"}\n')
    for precision in ("fp32", "auto"):
        config = LadderConfig(input=rows, model="m", out=tmp_path / precision / "l.jsonl",
                              precision=precision)  # fmt: skip
        with pytest.raises(InputError, match="stop here"):
            build_ladder(config)
    assert made == ["fp32", "auto"]  # auto: the engine's rule (bf16 where it pays)
