"""Importers: the official Observe-R1 JSONL, saved Hugging Face datasets, easy-vqa."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict
from PIL import Image
from typer.testing import CliRunner

from observe_r1.cli import app
from observe_r1.data import importers
from observe_r1.data.rows import RowError, read_rows
from observe_r1.ladder.steps import verifiable


@pytest.fixture
def picture(tmp_path) -> Path:
    path = tmp_path / "pics" / "cat.png"
    path.parent.mkdir()
    Image.new("RGB", (32, 32), "orange").save(path)
    return path


def chat(image: str, text: str) -> list[dict]:
    content = [{"type": "image", "image": image}, {"type": "text", "text": text}]
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}]


def test_official_message_as_json_python_literal_or_list(tmp_path, picture):
    messages = chat(f"file://{picture}", "How many cats in the image?")
    records = [
        {"message": json.dumps(messages), "answer": "$3$"},
        {"message": str(messages), "answer": 3, "source": "x"},  # Python literal: single quotes
        {"message": chat("pics/cat.png", "How many?"), "answer": "1"},  # a list, relative path
    ]
    source = tmp_path / "official.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    loaded = importers.import_official(source, tmp_path / "out")
    rows = read_rows(tmp_path / "out" / "rows.jsonl").rows
    assert [r["id"] for r in rows] == ["official-0", "official-1", "official-2"]
    assert [r["answer"] for r in rows] == ["$3$", "3", "1"]
    assert rows[0]["question"] == "How many cats in the image?"  # the system turn is dropped
    assert all(Path(r["image"]) == picture for r in rows) and rows[1]["source"] == "x"
    assert loaded.skipped == 0 and all(verifiable(row) for row in rows)


def test_official_round_trip(tmp_path, picture):
    row = {"id": "a", "image": str(picture), "question": "Which?", "answer": "B", "level": 2}
    record = importers.official_record(row)
    assert isinstance(record["message"], str)  # stringified, as the public trainer wants
    assert json.loads(record["message"])[0]["content"][0]["image"] == f"file://{picture}"
    assert importers.official_row(record) == row
    assert importers.official_row(json.loads(json.dumps(record))) == row


@pytest.mark.parametrize(
    "line, reason",
    [
        ("{not json", "Expecting property name"),
        ('{"answer": "1"}', "missing field 'message'"),
        ('{"message": "[{\'role\': ", "answer": "1"}', "field 'message' is neither JSON nor"),
        (
            '{"message": [{"role": "user", "content": [{"type": "image", "image": 3}]}]}',
            "field 'message': message 1: the image part's 'image' must be a string",
        ),
    ],
)
def test_official_bad_line_names_file_and_line(tmp_path, picture, line, reason):
    good = json.dumps({"message": chat(str(picture), "q"), "answer": "1"})
    source = tmp_path / "official.jsonl"
    source.write_text(f"{good}\n{line}\n{good}\n")
    with pytest.raises(RowError, match=f"official.jsonl:2: {reason}"):
        importers.import_official(source, tmp_path / "out")
    loaded = importers.import_official(source, tmp_path / "out", skip_invalid=True)
    assert (len(loaded.rows), loaded.skipped) == (2, 1)


def test_official_missing_answer_or_image(tmp_path):
    source = tmp_path / "official.jsonl"
    source.write_text(json.dumps({"message": chat("file:///nowhere.png", "q"), "answer": "1"}))
    with pytest.raises(RowError, match="official.jsonl:1: field 'image': no such file"):
        importers.import_official(source, tmp_path / "out")


def saved_dataset(tmp_path) -> Path:
    images = [Image.new("RGB", (20, 20), c) for c in ("red", "blue", "green")]
    data = {"img": images, "q": ["Colour?", "How many?", "Which?"], "a": ["red", "3", "B"]}
    data["opts"] = [["red", "blue"], ["2", "3"], ["x", "y"]]
    folder = tmp_path / "saved"
    dataset = Dataset.from_dict(data)
    DatasetDict(train=dataset, test=dataset.select([0])).save_to_disk(str(folder))
    return folder


def test_hf_dataset_with_custom_columns_and_choices(tmp_path):
    folder = saved_dataset(tmp_path)
    out = tmp_path / "out"
    importers.import_hf(
        folder,
        out,
        image_column="img",
        question_column="q",
        answer_column="a",
        choices_column="opts",
    )
    rows = read_rows(out / "rows.jsonl").rows
    assert [r["answer"] for r in rows] == ["A", "B", "B"]  # option texts become letters
    assert rows[0]["choices"] == ["red", "blue"] and rows[0]["question"] == "Colour?"
    assert Image.open(rows[0]["image"]).getpixel((0, 0)) == (255, 0, 0)
    assert rows[2]["image"].endswith("images/hf-2.png")
    importers.import_hf(
        folder, out, split="test", image_column="img", question_column="q", answer_column="a"
    )
    assert len(read_rows(out / "rows.jsonl").rows) == 1


def test_hf_missing_column_and_bad_answer(tmp_path):
    folder = saved_dataset(tmp_path)
    with pytest.raises(RowError, match="no column question, answer"):
        importers.import_hf(folder, tmp_path / "out", image_column="img")
    with pytest.raises(RowError, match=r"saved\[0\]: answer 'Colour\?' is neither a letter"):
        importers.import_hf(
            folder,
            tmp_path / "out",
            image_column="img",
            question_column="q",
            answer_column="q",
            choices_column="opts",
        )
    assert not (tmp_path / "out").exists()  # the image written for row 0 was removed again


def test_hf_truncated_or_oversized_image_bytes_name_the_row_and_leave_nothing(tmp_path):
    good, noise = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (8, 8)).save(good, "PNG")
    Image.effect_noise((64, 64), 50).convert("RGB").save(noise, "PNG")
    cut = noise.getvalue()[: len(noise.getvalue()) // 2]
    cells = [{"bytes": good.getvalue(), "path": None}, {"bytes": cut, "path": None}]
    folder = tmp_path / "saved"
    Dataset.from_dict(
        {"image": cells, "question": ["q?", "q?"], "answer": ["1", "2"]}
    ).save_to_disk(str(folder))
    out = tmp_path / "out"
    with pytest.raises(RowError, match=r"saved\[1\]: field 'image': unreadable image \(image file"):
        importers.import_hf(folder, out)
    assert not out.exists()
    loaded = importers.import_hf(folder, out, skip_invalid=True)
    assert (len(loaded.rows), loaded.skipped) == (1, 1)
    assert sorted(p.name for p in (out / "images").iterdir()) == ["hf-0.png"]


def test_easy_vqa_becomes_multiple_choice(tmp_path):
    loaded = importers.import_easy_vqa(tmp_path, limit=40)
    rows = read_rows(tmp_path / "rows.jsonl").rows
    assert len(rows) == len(loaded.rows) == 40
    for row in rows:
        assert row["choices"]["ABCD".index(row["answer"])] == row["answer_text"]
        assert verifiable(row) and Image.open(row["image"]).size == (64, 64)
    kinds = {tuple(sorted(r["choices"])) for r in rows}
    assert ("no", "yes") in kinds and ("circle", "rectangle", "triangle") in kinds


def test_cli_import_and_synth(tmp_path, picture):
    runner = CliRunner()
    result = runner.invoke(
        app, ["synth", "--out", str(tmp_path / "s"), "--n", "5", "--test-n", "2"]
    )
    assert result.exit_code == 0 and (tmp_path / "s" / "test.jsonl").is_file()
    assert runner.invoke(app, ["synth", "--out", str(tmp_path), "--families", "x"]).exit_code == 2

    result = runner.invoke(
        app, ["import", "--format", "easy-vqa", "--out", str(tmp_path / "e"), "--limit", "5"]
    )
    assert result.exit_code == 0 and "(5)" in result.output
    source = tmp_path / "official.jsonl"
    source.write_text(json.dumps({"message": chat(str(picture), "q"), "answer": "2"}) + "\n{bad\n")
    result = runner.invoke(
        app,
        ["import", "--format", "official", "--input", str(source), "--out", str(tmp_path / "o")],
    )
    assert result.exit_code == 2 and f"error: {source}:2: " in result.output
    result = runner.invoke(app, ["import", "--format", "csv", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "error: --format: unknown format" in result.output
