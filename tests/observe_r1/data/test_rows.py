"""The canonical row: choices validation, and writing rows with portable image paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from observe_r1.data.rows import RowError, read_rows, write_rows


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "images" / "a.png"
    path.parent.mkdir()
    Image.new("RGB", (8, 8)).save(path)
    return path


def one_row(tmp_path, **row):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"image": "images/a.png", "question": "q?", **row}) + "\n")
    return path


@pytest.mark.parametrize("answer", ["B", "12", 12])
def test_choice_answer_is_a_letter_or_an_option(tmp_path, image, answer):
    path = one_row(tmp_path, answer=answer, choices=["10", "12", "14"])
    assert read_rows(path).rows[0]["answer"] == str(answer)


@pytest.mark.parametrize(
    "choices, answer, reason",
    [
        (["10", "12"], "C", "neither a letter A-B nor one of the choices"),
        (["10"], "A", "a list of 2 to 6 options"),
        ("10,12", "A", "a list of 2 to 6 options"),
        ([["10"], "12"], "A", "strings or numbers"),
    ],
)
def test_bad_choices_name_the_line(tmp_path, image, choices, answer, reason):
    with pytest.raises(RowError, match=f"rows.jsonl:1: .*{reason}"):
        read_rows(one_row(tmp_path, answer=answer, choices=choices))


def test_write_rows_keeps_images_relative_inside_the_folder(tmp_path, image):
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere.png"
    Image.new("RGB", (8, 8)).save(outside)
    rows = [
        {"id": "in", "image": str(image), "question": "q", "answer": "1"},
        {"id": "out", "image": str(outside), "question": "q", "answer": "2"},
    ]
    path = write_rows(tmp_path / "rows.jsonl", rows)
    written = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["image"] for r in written] == ["images/a.png", str(outside)]
    assert [r["image"] for r in read_rows(path).rows] == [str(image), str(outside)]
    outside.unlink()


def test_training_asks_a_choice_row_with_lettered_options(tmp_path, image):
    from observe_r1.training.config import load_config
    from observe_r1.training.train import training_dataset

    path = one_row(tmp_path, answer="12", choices=["10", "12"])
    tiny = Path(__file__).parents[3] / "configs" / "observe_r1" / "tiny.yaml"
    config = load_config(tiny, [f"train_file={path}", f"output_dir={tmp_path / 'run'}"])
    dataset, _ = training_dataset(config)
    question = dataset[0]["prompt"][-1]["content"][-1]["text"]
    assert "A. 10\nB. 12" in question and dataset[0]["answer"] == "B"


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_float_image_with_non_finite_pixels_is_an_input_error(tmp_path, bad):
    import numpy as np
    from typer.testing import CliRunner

    from observe_r1.cli import app
    from tests.observe_r1.training.test_trainer import TINY

    pixels = np.ones((32, 32), dtype=np.float32)
    pixels[3, 4] = bad
    Image.fromarray(pixels, mode="F").save(tmp_path / "float.tiff")
    rows = tmp_path / "rows.jsonl"
    row = {"image": "float.tiff", "question": "How many?", "answer": "2"}
    rows.write_text(json.dumps(row) + "\n")
    out = tmp_path / "run"
    args = ["train", "--config", str(TINY), "--output-dir", str(out), "--set", f"train_file={rows}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {rows}:1: field 'image': ")
    assert "float.tiff has NaN or infinite pixel values" in result.stderr
    assert not out.exists()
