"""Image reliance: blank and swapped images, the image-grounded accuracy and its nulls."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from observe_r1.cli import app
from observe_r1.data.rows import InputError, read_rows
from observe_r1.data.synth import STARTER_LEVELS, synthesize
from observe_r1.evaluation import evaluate
from observe_r1.evaluation.evaluate import Responses
from observe_r1.evaluation.image_ablation import (
    ablated_rows,
    parse_conditions,
    permutation_null,
    swap_partners,
)
from observe_r1.evaluation.resume import PartialResponses


def result_md(out: Path) -> str:
    return (out / "eval.md").read_text()


def _row(family, level, answer, image="x.png", **more):
    return {"family": family, "level": level, "question": "q", "answer": answer,
            "image": image} | more  # fmt: skip


def test_partners_are_a_seeded_derangement_within_strata_with_other_answers():
    rows = [_row("dice", 0, str(2 + i % 3), f"{i}.png") for i in range(12)]
    rows += [_row("chart", 0, "2", "c0.png"), _row("chart", 0, "2", "c1.png")]  # one answer
    rows += [_row("chart", 1, "5", "alone.png")]
    partners = swap_partners(rows, seed=3)
    assert partners == swap_partners(rows, seed=3) != swap_partners(rows, seed=4)
    for index, partner in enumerate(partners[:12]):
        assert (
            partner != index and partner < 12 and rows[partner]["answer"] != rows[index]["answer"]
        )
    assert sorted(partners[:12]) == list(range(12))  # each image used once
    assert partners[12:] == [13, 12, 14]  # same answer where no other exists; alone: itself


def test_ablated_rows_swap_and_blank_images(tmp_path):
    image = tmp_path / "a.png"
    Image.new("RGB", (30, 20), "red").save(image)
    rows = [_row("dice", 0, "2", str(image)), _row("dice", 0, "3", str(tmp_path / "b.png"))]
    rows.append({"question": "text only", "answer": "1"})
    swapped = ablated_rows(rows, "swap", [1, 0, 2], tmp_path / "blank")
    assert [r.get("image") for r in swapped] == [rows[1]["image"], rows[0]["image"], None]
    blank = ablated_rows(rows[:1], "blank", [0], tmp_path / "blank")[0]
    with Image.open(blank["image"]) as opened:
        assert opened.size == (30, 20) and opened.getcolors() == [(600, (255, 255, 255))]
    assert {k: v for k, v in blank.items() if k != "image"} == {
        k: v for k, v in rows[0].items() if k != "image"
    }
    assert parse_conditions("swap, blank") == ("blank", "swap") and parse_conditions(None) == ()
    with pytest.raises(InputError, match="--image-ablation: 'noise' is not blank or swap"):
        parse_conditions("blank,noise")


def test_permutation_null_of_a_constant_answerer_is_its_accuracy():
    golds = ["1", "2", "1", "2", "3", "3"]
    strata = ["a"] * 4 + ["b"] * 2
    null = permutation_null(golds, ["1"] * 4 + ["3", "3"], strata, permutations=50)
    assert np.allclose(null, 4 / 6)  # any permutation of a constant scores the same
    perfect = permutation_null(golds, golds, strata, permutations=400, seed=1)
    # stratum a: each of 4 rows right with probability 1/2; b always right
    assert perfect.mean() == pytest.approx((2 + 2) / 6, abs=0.03)
    judged_alike = permutation_null(["2"], ["2.0"], ["a"], permutations=3)
    assert list(judged_alike) == [1.0, 1.0, 1.0]


@pytest.fixture
def balanced_rows(tmp_path) -> Path:
    synthesize(tmp_path / "data", 1, seed=2, families=["counting", "dice"],
               levels=STARTER_LEVELS, choice_share=0, test_n=24)  # fmt: skip
    return tmp_path / "data" / "test.jsonl"


def _scripted(answer_of):
    """A stand-in for `generate_responses`: each row answered by ``answer_of(row)``."""

    def generate(model, processor, rows, **_):
        texts = [[f"<observe>x</observe><think>y</think><answer>{answer_of(row)}</answer>"]
                 for row in rows]  # fmt: skip
        return Responses(texts, [[9]] * len(rows))

    return generate


def _ablation_eval(tmp_path, data, monkeypatch, answer_of):
    monkeypatch.setattr(evaluate, "generate_responses", _scripted(answer_of))
    out = tmp_path / "report"
    args = ["eval", "--model", "tiny-llava", "--data", str(data), "--out", str(out),
            "--image-ablation", "blank,swap", "--overwrite"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "image-grounded accuracy (real - swap)" in result.stdout
    return json.loads((out / "eval.json").read_text()), out


def test_an_answerer_that_ignores_the_image_has_no_image_grounded_accuracy(
    tmp_path, balanced_rows, monkeypatch
):
    report, out = _ablation_eval(tmp_path, balanced_rows, monkeypatch, lambda row: "2")
    block = report["image_ablation"]
    assert block["accuracy"]["real"] == block["accuracy"]["swap"] == block["accuracy"]["blank"]
    grounded = block["image_grounded_accuracy"]
    assert grounded == {"difference": 0.0, "ci95_low": 0.0, "ci95_high": 0.0}
    assert block["swap_same_answer_rows"] == 0  # balanced: every partner answers otherwise
    assert block["permutation_null"]["p_value"] == 1.0  # a constant earns its accuracy anyway
    assert report["accuracy"] == pytest.approx(report["prior_accuracy"])  # "2" is a best constant
    assert block["prior_accuracy"] == report["prior_accuracy"]
    assert len((out / "predictions.swap.jsonl").read_text().splitlines()) == 24
    assert "| swapped rows whose partner has the same answer | 0 of 24 |" in result_md(out)


def test_an_answerer_that_reads_the_image_has_it(tmp_path, balanced_rows, monkeypatch):
    gold_of_image = {row["image"]: row["answer"] for row in read_rows(balanced_rows).rows}
    report, _ = _ablation_eval(
        tmp_path, balanced_rows, monkeypatch, lambda row: gold_of_image.get(row["image"], "0")
    )
    block = report["image_ablation"]
    assert block["accuracy"] == {"real": 1.0, "blank": 0.0, "swap": 0.0}
    grounded = block["image_grounded_accuracy"]
    assert grounded["difference"] == 1.0 and grounded["ci95_low"] == 1.0
    assert block["real_minus_blank"]["difference"] == 1.0
    assert (
        block["permutation_null"]["accuracy"] < 0.6 and block["permutation_null"]["p_value"] < 0.01
    )
    assert report["prior_accuracy"] < 0.6 and report["chance_accuracy"] < 0.6


def test_ablation_eval_on_a_real_model_resumes_across_conditions(
    tmp_path, balanced_rows, monkeypatch
):
    rows = read_rows(balanced_rows).rows[:4]
    data = tmp_path / "four.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "report"
    args = ["eval", "--model", "tiny-llava", "--data", str(data), "--out", str(out),
            "--max-new-tokens", "3", "--batch-size", "5",
            "--image-ablation", "swap,blank"]  # fmt: skip
    add, added = PartialResponses.add, []

    def add_then_stop(self, *batch):
        add(self, *batch)
        added.append(batch[0])
        if len(added) == 2:  # rows 0-4 and 5-9: the second batch spans blank and swap
            raise RuntimeError("stopped")

    monkeypatch.setattr(PartialResponses, "add", add_then_stop)
    assert CliRunner().invoke(app, args).exit_code != 0
    monkeypatch.undo()
    partial = out / "predictions.partial.jsonl"
    settings = json.loads(partial.read_text().splitlines()[0])
    assert settings["image_ablation"] == ["blank", "swap"] and added == [0, 5]
    resumed = CliRunner().invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming: 2 batches answered before" in resumed.output and not partial.exists()
    report = json.loads((out / "eval.json").read_text())
    assert set(report["image_ablation"]["accuracy"]) == {"real", "blank", "swap"}
    swapped = [
        json.loads(line) for line in (out / "predictions.swap.jsonl").read_text().splitlines()
    ]
    assert len(swapped) == 4 and Counter(r["row"] for r in swapped) == Counter(range(4))
    assert "| level | accuracy | prior | chance |" in (out / "eval.md").read_text()


def test_a_bad_ablation_is_one_error_line_before_anything_is_written(tmp_path, balanced_rows):
    out = tmp_path / "report"
    args = ["eval", "--model", "tiny-llava", "--data", str(balanced_rows), "--out", str(out),
            "--image-ablation", "blank,mask"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and not out.exists()
    assert result.stderr.strip() == "error: --image-ablation: 'mask' is not blank or swap"
