"""``eager-llm recommend --input ... --output ...`` on a tiny trained run: the eval decoder's
lists, a killed run continued, bad lines named; the resume check by hand."""

import json

import pytest
from typer.testing import CliRunner

from eager_llm.cli import app
from eager_llm.recommend import Request, completed, list_lengths, read_requests
from eager_llm.run_decoder import RunDecoder, load_run
from tests.eager_llm.training.toy import CONFIG, toy_index

runner = CliRunner()
HISTORIES = [["i1", "i2", "i3"], ["i4"], ["i0", "i9", "i8", "i7"], ["i5", "i6"], ["i2", "i2"]]


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def write_lines(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("recommend")
    result = cli("train", "--config", CONFIG, "--index", toy_index(root), "--output-dir",
                 root / "run", "--max-steps", 1)  # fmt: skip
    assert result.exit_code == 0, result.output
    return root / "run"


@pytest.fixture(scope="module")
def histories(tmp_path_factory):
    records = [{"user": f"u{n}", "history": h} for n, h in enumerate(HISTORIES)]
    return write_lines(tmp_path_factory.mktemp("in") / "histories.jsonl", records)


def test_every_line_gets_the_eval_decoders_top_k(run, histories, tmp_path):
    out = tmp_path / "topk.jsonl"
    result = cli("recommend", "--run", run / "final", "--input", histories, "--output", out,
                 "--k", 3, "--batch-size", 2)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{out}: 5 users (0 were there before)" in result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    decoder = RunDecoder(load_run(run))
    expected = decoder.top_k(decoder.prompts(HISTORIES), 3)
    assert [(r["line"], r["user"]) for r in lines] == [(n + 1, f"u{n}") for n in range(5)]
    for record, items in zip(lines, expected, strict=True):
        assert record["items"] == [item for item, _ in items]
        assert record["scores"] == pytest.approx([score for _, score in items], abs=1e-4)


def test_a_killed_run_continues_where_it_stopped(run, histories, tmp_path):
    full, out = tmp_path / "full.jsonl", tmp_path / "topk.jsonl"
    for path in (full, out):
        cli("recommend", "--run", run, "--input", histories, "--output", path, "--k", 3)
    text = full.read_text()
    cut = text.index("\n", text.index("\n") + 1) + 1  # two whole lines ...
    out.write_text(text[: cut + 20])  # ... and a half-written third
    result = cli("recommend", "--run", run, "--input", histories, "--output", out, "--k", 3)
    assert result.exit_code == 0, result.output
    assert "(2 were there before)" in result.output
    assert out.read_text() == text
    again = cli("recommend", "--run", run, "--input", histories, "--output", out, "--k", 3)
    assert "(5 were there before)" in again.output and out.read_text() == text


def test_a_rerun_with_other_histories_for_the_same_users_keeps_no_stale_answer(
    run, histories, tmp_path
):
    out = tmp_path / "topk.jsonl"
    cli("recommend", "--run", run, "--input", histories, "--output", out, "--k", 3)
    before = out.read_text()
    changed = [{"user": f"u{n}", "history": h} for n, h in enumerate(HISTORIES)]
    changed[1]["history"] = ["i7", "i8"]  # same users, line 2 another history
    changed = write_lines(tmp_path / "changed.jsonl", changed)
    result = cli("recommend", "--run", run, "--input", changed, "--output", out, "--k", 3)
    assert result.exit_code == 2, result.output
    assert "topk.jsonl line 2: answers another input" in result.output
    assert out.read_text() == before


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"history": ["i1", "nope", "i99"]}, "unknown item ids (not in the run's index): nope"),
        ({"history": []}, "the history is empty"),
        ({"history": "i1,i2"}, "'history' must be a list of item ids"),
        ({"user": "u1"}, 'not an object with a "history"'),
        ("{not json", "not JSON"),
    ],
)
def test_a_bad_line_is_one_error_naming_it_and_nothing_is_written(run, tmp_path, line, message):
    path = tmp_path / "histories.jsonl"
    good = json.dumps({"history": ["i1"]})
    path.write_text(f"{good}\n{line if isinstance(line, str) else json.dumps(line)}\n")
    out = tmp_path / "topk.jsonl"
    result = cli("recommend", "--run", run, "--input", path, "--output", out)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {path} line 2: {message}")
    assert not out.exists()


def test_options_go_together(run, histories):
    result = cli("recommend", "--run", run, "--history", "i1", "--input", histories)
    assert result.exit_code == 2 and "either --history" in result.output
    result = cli("recommend", "--run", run, "--input", histories)
    assert result.exit_code == 2 and "--input and --output go together" in result.output


def test_completed_keeps_whole_lines_of_this_input_only(tmp_path):
    requests = [Request(1, "a", ["i1"]), Request(2, 2, ["i2"]), Request(3, "c", ["i3"])]
    out = tmp_path / "topk.jsonl"
    assert completed(out, requests, [2] * 3) == 0  # no file yet
    two = ["x", "y"]
    rows = [
        {"line": r.line, "user": r.user, "history_digest": r.digest, "items": two}
        for r in requests[:2]
    ]
    write_lines(out, rows)
    assert completed(out, requests, [2] * 3) == 2
    out.write_text(out.read_text() + '{"line": 3, "us')
    assert completed(out, requests, [2] * 3) == 2 and out.read_text().endswith("]}\n")  # cut off
    with pytest.raises(ValueError, match="line 1: 2 items, this run gives 3"):
        completed(out, requests, [3] * 3)
    write_lines(out, [{**rows[0], "user": "b"}])
    with pytest.raises(ValueError, match="topk.jsonl line 1: answers another input"):
        completed(out, requests, [2] * 3)
    write_lines(out, [{**rows[0], "history_digest": Request(1, "a", ["i9"]).digest}])
    with pytest.raises(ValueError, match="line 1: answers another input .*, history "):
        completed(out, requests, [2] * 3)
    write_lines(out, [rows[0], rows[1], rows[1], rows[1]])
    with pytest.raises(ValueError, match="4 lines, more than the input's 3"):
        completed(out, requests, [2] * 3)
    out.write_text("garbage\n")
    with pytest.raises(ValueError, match="line 1: not a line of `recommend`"):
        completed(out, requests, [2] * 3)


def test_read_requests_defaults_the_user_to_the_line_and_reads_numeric_ids(tmp_path):
    path = write_lines(tmp_path / "h.jsonl", [{"history": [1, 50]}, {"user": 7, "history": ["3"]}])
    index = {"1": ["<a_0>"], "50": ["<a_1>"], "3": ["<a_2>"]}
    assert read_requests(path, index) == [Request(1, 1, ["1", "50"]), Request(2, 7, ["3"])]
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="no histories"):
        read_requests(tmp_path / "empty.jsonl", index)


def test_seen_remove_never_recommends_a_history_item(run, tmp_path):
    result = cli("recommend", "--run", run, "--history", "i0,i1,i2,i3,i4,i5,i6", "--k", 5,
                 "--seen", "remove")  # fmt: skip
    assert result.exit_code == 0, result.output
    listed = [line.split("(item ")[1].split(")")[0] for line in result.stdout.splitlines()[1:]]
    assert sorted(listed) == ["i7", "i8", "i9"]  # only three items are left for five slots
    histories = [{"history": h} for h in (["i0", "i1", "i2", "i3", "i4", "i5", "i6"], ["i9"])]
    path, out = write_lines(tmp_path / "h.jsonl", histories), tmp_path / "topk.jsonl"
    result = cli("recommend", "--run", run, "--input", path, "--output", out, "--k", 5,
                 "--seen", "remove", "--beam-scores", "allowed")  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(line["items"]) for line in lines] == [3, 5]
    assert all(line["seen"] == "remove" and line["beam_scores"] == "allowed" for line in lines)
    assert "i9" not in lines[1]["items"]
    result = cli("recommend", "--run", run, "--input", path, "--output", out, "--k", 5)
    assert result.exit_code == 2
    assert "topk.jsonl line 1: written with --seen remove, this run has keep" in result.output


def test_list_lengths_under_each_protocol():
    requests = [Request(1, "a", ["i1", "i2", "i1"]), Request(2, "b", ["i1"])]
    assert list_lengths(requests, 5, 4, "keep") == [4, 4]
    assert list_lengths(requests, 5, 4, "remove") == [2, 3]
    assert list_lengths(requests, 2, 4, "remove") == [2, 2]
