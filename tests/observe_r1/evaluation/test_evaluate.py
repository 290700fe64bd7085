"""Evaluation metrics on hand-made predictions, and one batched generation on a tiny VLM."""

import json

import pytest
from transformers import AutoModelForImageTextToText

from model_zoo import resolve
from model_zoo.processors import load_processor
from observe_r1.demo import draw_counting_rows
from observe_r1.evaluation.evaluate import (
    Responses,
    generate_responses,
    length_order,
    majority_baseline,
    observation_recall,
    pass_at_k,
    prediction_records,
    question_and_gold,
    score,
    write_report,
)


def good(answer: str) -> str:
    return f"<observe>shapes</observe><think>count</think><answer>{answer}</answer>"


ROWS = [
    {"question": "q1", "answer": "3", "level": 1, "family": "count"},
    {"question": "q2", "answer": "1/2", "level": 1, "family": "chart"},
    {"question": "q3", "answer": "7", "level": 2, "family": "count"},
    {"question": "q4", "answer": "12", "choices": ["10", "12", "14"], "level": 2, "family": "mc"},
]


def test_score_on_hand_made_predictions():
    texts = [
        [good("3"), "<answer>4</answer>"],  # right, well formatted
        ["<think>half</think><answer>0.5</answer>", good("0.5")],  # right, bad format
        [good("8"), good("7")],  # wrong first, right second
        [good("B"), good("A")],  # MC: the gold "12" is choice B
    ]
    tokens = [[10, 4], [20, 6], [30, 8], [40, 2]]
    metrics = score(ROWS, Responses(texts, tokens))
    assert metrics["accuracy"] == pytest.approx(3 / 4)
    assert metrics["format_rate"] == pytest.approx(3 / 4)
    assert metrics["mean_tokens"] == pytest.approx(25.0)
    assert metrics["median_tokens"] == pytest.approx(25.0)
    assert metrics["accuracy_by_level"] == {"1": 1.0, "2": 0.5}
    assert metrics["accuracy_by_family"] == {"chart": 1.0, "count": 0.5, "mc": 1.0}
    # pass@1 averages single-sample success over both samples; pass@2: any of the two
    assert metrics["pass_at_k"]["pass@1"] == pytest.approx((0.5 + 1 + 0.5 + 0.5) / 4)
    assert metrics["pass_at_k"]["pass@2"] == pytest.approx(1.0)


def test_prediction_records_say_what_each_sample_answered():
    rows = [{**ROWS[0], "id": "r0"}, {**ROWS[3], "id": "r3"}]
    texts = [[good("3"), "<answer>4"], ["<think>x</think><answer>B</answer>", good("C")]]
    records = prediction_records(rows, Responses(texts, [[10, 4], [7, 9]]))
    summary = [
        (r["row"], r["id"], r["sample"], r["gold"], r["prediction"], r["correct"], r["formatted"])
        for r in records
    ]
    assert summary == [
        (0, "r0", 0, "3", "3", True, True),
        (0, "r0", 1, "3", None, False, False),
        (1, "r3", 0, "B", "B", True, False),
        (1, "r3", 1, "B", "C", False, True),
    ]
    assert [r["tokens"] for r in records] == [10, 4, 7, 9]
    assert records[1]["response"] == "<answer>4" and records[2]["family"] == "mc"


def test_think_format_is_scored_against_its_own_tags():
    texts = [["<think>t</think><answer>3</answer>"]]
    metrics = score(ROWS[:1], Responses(texts, [[5]]), response_format="think")
    assert metrics["format_rate"] == 1.0 and metrics["accuracy"] == 1.0


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [(4, 0, 1, 0.0), (4, 4, 2, 1.0), (4, 1, 1, 0.25), (4, 1, 2, 0.5), (5, 2, 2, 0.7)],
)
def test_pass_at_k(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_choices_become_letters_and_gold_letters_stay():
    question, gold = question_and_gold(ROWS[3])
    assert "A. 10\nB. 12\nC. 14" in question and gold == "B"
    assert question_and_gold({**ROWS[3], "answer": "C"})[1] == "C"


@pytest.mark.parametrize(
    ("response", "caption", "expected"),
    [
        ("<observe>3 dice showing 2, 5, 5.</observe><think>", "3 dice showing 2, 5, 5.", 1.0),
        ("<observe>3 dice showing 2, 5, 4.</observe>", "3 dice showing 2, 5, 5.", 0.75),
        ("<observe>dice 5, 5, 5, 5, 2, 3</observe>", "3 dice showing 2, 5, 5.", 1.0),
        ("<observe>Day 1: 2.5</observe>", "Day 1: 2.5, day 2: 3.", 2 / 4),
        ("no block, though 3 2 5 5 appear", "3 dice showing 2, 5, 5.", 0.0),
        ("<observe>x</observe><think>3 2 5 5</think>", "3 dice showing 2, 5, 5.", 0.0),
        ("<observe>4 red circles</observe>", "A red circle.", None),
        ("<observe>4 red circles</observe>", None, None),
    ],
)
def test_observation_recall_counts_caption_numbers_the_observe_block_states(
    response, caption, expected
):
    assert observation_recall(response, caption) == (
        expected if expected is None else pytest.approx(expected)
    )


def test_observation_recall_is_averaged_per_family_over_rows_with_captions():
    rows = [
        {**ROWS[0], "caption": "3 red circles."},
        {**ROWS[1], "caption": "Day 1: 4, day 2: 6."},
        {**ROWS[2], "caption": "5 blue squares."},
        ROWS[3],  # no caption: not counted
    ]
    texts = [
        ["<observe>3 red circles</observe>", "<observe>nothing</observe>"],  # first sample only
        ["<observe>day 1: 4</observe>"],
        ["<observe>4 blue squares</observe>"],
        ["<observe>12</observe>"],
    ]
    metrics = score(rows, Responses(texts, [[1, 1], [1], [1], [1]]))
    assert metrics["observation_recall"] == pytest.approx((1 + 2 / 4 + 0) / 3)
    assert metrics["observation_recall_by_family"] == {
        "chart": pytest.approx(2 / 4),
        "count": pytest.approx(0.5),
    }
    assert score(ROWS, Responses([[good("1")]] * 4, [[1]] * 4))["observation_recall"] is None


def test_majority_baseline():
    assert majority_baseline(["1", "2", "2", "3"]) == 0.5


def test_generation_and_report_on_tiny_vlm(tmp_path):
    folder = resolve("tiny-llava")
    model = AutoModelForImageTextToText.from_pretrained(folder)
    processor = load_processor(folder)
    from observe_r1.data.rows import read_rows

    rows = read_rows(draw_counting_rows(tmp_path / "data", n=3)).rows
    responses = generate_responses(
        model, processor, rows, samples=2, max_new_tokens=5, batch_size=2
    )
    assert [len(t) for t in responses.texts] == [2, 2, 2]
    assert all(0 < n <= 5 for tokens in responses.tokens for n in tokens)
    metrics = score(rows, responses)
    write_report(metrics, tmp_path / "out", "tiny-llava", prediction_records(rows, responses))
    for name in ("eval.json", "eval.md", "eval.png", "predictions.jsonl"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[5])["sample"] == 1


def test_batches_are_cut_by_prompt_length_and_answers_come_back_in_row_order(tmp_path, monkeypatch):
    """Rows of alternating short and long questions: each batch of 2 holds prompts of one
    length; every row gets the greedy answer it gets alone (a real tiny model), and its own
    answer back (a generator that answers each prompt with as many tokens as it has)."""
    from observe_r1.data.rows import read_rows
    from observe_r1.evaluation import evaluate
    from observe_r1.evaluation.evaluate import row_conversation

    folder = resolve("tiny-llava")
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    processor = load_processor(folder)
    rows = read_rows(draw_counting_rows(tmp_path / "data", n=4)).rows
    for row in rows[1::2]:
        row["question"] += " Count carefully, shape by shape, and say how many there are."
    prompts = [
        processor.apply_chat_template(row_conversation(r, "observe"), add_generation_prompt=True)
        for r in rows
    ]
    assert length_order(processor.tokenizer, prompts) == [0, 2, 1, 3]

    def answers(batch_size: int | None):
        if batch_size:
            return generate_responses(model, processor, rows, max_new_tokens=6, batch_size=2)
        alone = [generate_responses(model, processor, [r], max_new_tokens=6) for r in rows]
        return [a.texts[0] for a in alone], [a.tokens[0] for a in alone]

    batched = answers(2)
    assert (batched.texts, batched.tokens) == answers(None)
    monkeypatch.setattr(
        evaluate,
        "generate_ids",
        lambda model, inputs, *_, **__: [[7] * int(m.sum()) for m in inputs["attention_mask"]],
    )
    own_lengths = answers(None)[1]
    assert len(set(map(str, own_lengths))) > 1 and answers(2).tokens == own_lengths


def test_eval_cli_reports_and_names_bad_lines(tmp_path):
    from typer.testing import CliRunner

    from observe_r1.cli import app

    data = draw_counting_rows(tmp_path / "data", n=2)
    out = tmp_path / "report"
    args = ["eval", "--model", "tiny-llava", "--data", str(data), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--max-new-tokens", "4"])
    assert result.exit_code == 0, result.output
    assert "| accuracy |" in (out / "eval.md").read_text()
    assert '"skipped": 0' in (out / "eval.json").read_text()
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 2
    from model_zoo.hardware import inference_precision

    expected = inference_precision("cpu")  # bf16 where the CPU has native bf16 units
    assert json.loads((out / "eval.json").read_text())["precision"] == expected
    fp32 = tmp_path / "fp32"
    asked = ["--max-new-tokens", "4", "--precision", "fp32", "--out", str(fp32)]
    result = CliRunner().invoke(app, [*args[:-2], *asked])
    assert result.exit_code == 0, result.output
    assert json.loads((fp32 / "eval.json").read_text())["precision"] == "fp32"
    result = CliRunner().invoke(app, [*args, "--precision", "fp16", "--overwrite"])
    assert (
        result.exit_code == 2 and "error: --precision: must be auto, fp32 or bf16" in result.output
    )

    data.write_text(data.read_text() + "{not json\n")
    bad = CliRunner().invoke(app, [*args, "--overwrite"])
    assert bad.exit_code == 2 and "train.jsonl:3:" in bad.output
    assert (out / "eval.json").is_file()  # a failed --overwrite keeps the earlier report


def test_eval_cli_skips_a_truncated_image_up_front_and_counts_it(tmp_path):
    from typer.testing import CliRunner

    from observe_r1.cli import app

    data = draw_counting_rows(tmp_path / "data", n=2)
    first = json.loads(data.read_text().splitlines()[0])
    image = data.parent / first["image"]
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    out = tmp_path / "report"
    args = ["eval", "--model", "tiny-llava", "--data", str(data), "--out", str(out)]
    bad = CliRunner().invoke(app, [*args, "--max-new-tokens", "2"])
    assert bad.exit_code == 2 and not out.exists()
    assert bad.stderr.startswith(f"error: {data}:1: field 'image': unreadable image")
    result = CliRunner().invoke(app, [*args, "--max-new-tokens", "2", "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert f"skipped 1 invalid rows: {data}:1: field 'image'" in result.stderr
    report = json.loads((out / "eval.json").read_text())
    assert report["skipped"] == 1 and report["rows"] == 1


def test_eval_device_is_auto_cpu_or_an_available_cuda(tmp_path):
    import torch
    from typer.testing import CliRunner

    from observe_r1.cli import app

    data = draw_counting_rows(tmp_path / "data", n=1)
    args = ["eval", "--model", "tiny-llava", "--data", str(data), "--out", str(tmp_path / "r")]
    bad = CliRunner().invoke(app, [*args, "--device", "gpu"])
    assert bad.exit_code == 2 and "error: --device: must be auto, cpu, cuda" in bad.output
    if not torch.cuda.is_available():
        bad = CliRunner().invoke(app, [*args, "--device", "cuda"])
        assert bad.exit_code == 2 and "error: --device: cuda: no CUDA device" in bad.output
    assert not (tmp_path / "r").exists()  # refused before anything is written
