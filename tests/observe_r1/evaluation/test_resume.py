"""A stopped eval resumes: answered batches are kept, the rest answered, the result the same."""

import json

import pytest
from transformers import AutoModelForImageTextToText

from model_zoo import resolve
from model_zoo.processors import load_processor
from observe_r1.data.rows import InputError, read_rows
from observe_r1.demo import draw_counting_rows
from observe_r1.evaluation.evaluate import generate_responses
from observe_r1.evaluation.resume import PartialResponses

SETTINGS = {"model": "m", "rows": 4, "samples": 2, "seed": 0}


def test_partial_file_round_trip_drops_a_torn_last_line(tmp_path):
    path = tmp_path / "out" / "predictions.partial.jsonl"
    partial = PartialResponses(path, SETTINGS)
    assert not path.exists()  # nothing is written before the first batch
    partial.add(0, [["a", "b"]], [[3, 4]])
    partial.add(1, [["c", "d"]], [[5, 6]])
    path.write_text(path.read_text() + '{"start": 2, "te')  # a stop cut the next line

    again = PartialResponses(path, SETTINGS)
    assert again.get(0) == ([["a", "b"]], [[3, 4]]) and again.get(1) == ([["c", "d"]], [[5, 6]])
    assert again.get(2) is None
    assert len(path.read_text().splitlines()) == 3  # settings + 2 whole batches
    again.add(2, [["e", "f"]], [[7, 8]])
    assert PartialResponses(path, SETTINGS).get(2) == ([["e", "f"]], [[7, 8]])
    again.finish()
    assert not path.exists()


def test_other_settings_name_the_field_and_keep_the_file(tmp_path):
    path = tmp_path / "predictions.partial.jsonl"
    PartialResponses(path, SETTINGS).add(0, [["a"]], [[1]])
    before = path.read_text()
    with pytest.raises(InputError, match=r"samples: 2 there, 4 now"):
        PartialResponses(path, {**SETTINGS, "samples": 4})
    path.write_text("not the settings\n")
    with pytest.raises(InputError, match="line 1 is not the settings"):
        PartialResponses(path, SETTINGS)
    path.write_text(before)
    assert PartialResponses(path, SETTINGS).get(0) == ([["a"]], [[1]])


class Stop(Exception):
    pass


def test_stopped_sampled_generation_resumes_to_the_same_responses(tmp_path):
    folder = resolve("tiny-llava")
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    processor = load_processor(folder)
    rows = read_rows(draw_counting_rows(tmp_path / "data", n=5)).rows
    sampling = {"samples": 2, "max_new_tokens": 6, "batch_size": 2, "seed": 7}
    whole = generate_responses(model, processor, rows, **sampling)

    path = tmp_path / "partial.jsonl"
    answered = []

    def stop_after_two_batches(n):
        answered.append(n)
        if len(answered) == 2:
            raise Stop

    with pytest.raises(Stop):
        generate_responses(
            model, processor, rows, partial=PartialResponses(path, SETTINGS),
            progress=stop_after_two_batches, **sampling,
        )  # fmt: skip
    assert [json.loads(line).get("start") for line in path.read_text().splitlines()] == [
        None, 0, 2,
    ]  # fmt: skip
    resumed = PartialResponses(path, SETTINGS)
    resumed.batches[0] = ([["kept", "kept"], ["kept", "kept"]], [[1, 1], [1, 1]])
    again = generate_responses(model, processor, rows, partial=resumed, **sampling)
    assert again.texts[:2] == [["kept", "kept"]] * 2  # batch 0 was not generated again
    assert again.texts[2:] == whole.texts[2:] and again.tokens[2:] == whole.tokens[2:]


def test_eval_cli_resumes_and_removes_the_partial_file(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from observe_r1.cli import app

    data = draw_counting_rows(tmp_path / "data", n=3)
    out = tmp_path / "report"
    args = ["eval", "--model", "tiny-llava", "--data", str(data), "--out", str(out),
            "--max-new-tokens", "4", "--batch-size", "2"]  # fmt: skip
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    partial_path = out / "predictions.partial.jsonl"
    assert not partial_path.exists()
    whole = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]

    add = PartialResponses.add

    def add_then_stop(self, *batch):
        add(self, *batch)
        raise Stop

    monkeypatch.setattr(PartialResponses, "add", add_then_stop)
    refused = CliRunner().invoke(app, args)  # the finished report is not replaced silently
    assert refused.exit_code == 2 and "holds an earlier run's outputs" in refused.output
    stopped = CliRunner().invoke(app, [*args, "--overwrite"])
    assert stopped.exit_code != 0  # the stop, reported by the CLI
    monkeypatch.undo()
    lines = partial_path.read_text().splitlines()
    assert len(lines) == 2  # the settings and the first batch
    assert not (out / "eval.json").exists()  # the replaced report is gone
    batch = json.loads(lines[1])
    batch["texts"] = [["kept"], ["kept"]]  # marks what a resumed run must not generate again
    partial_path.write_text(lines[0] + "\n" + json.dumps(batch) + "\n")

    other = CliRunner().invoke(app, [*args[:-2], "--batch-size", "1"])
    assert other.exit_code == 2
    assert "batch_size: 2 there, 1 now" in other.output and partial_path.exists()

    resumed = CliRunner().invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming: 1 batches answered before" in resumed.output
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [record["response"] for record in records[:2]] == ["kept", "kept"]
    assert records[2] == whole[2]
    assert not partial_path.exists()
