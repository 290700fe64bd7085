"""Rows without an image and with several (``images: [...]``): the schema, import, the
ladder's rollouts and cache, one training step and eval on the tiny Qwen2.5-VL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset, Sequence
from datasets import Image as ImageFeature
from PIL import Image
from transformers import AutoModelForImageTextToText
from typer.testing import CliRunner

from model_zoo import resolve
from model_zoo.cache import file_sha256
from model_zoo.processors import load_processor
from observe_r1.cli import app
from observe_r1.data import importers
from observe_r1.data.rows import MAX_IMAGES, RowError, read_rows, row_images, write_rows
from observe_r1.evaluation.evaluate import open_images, row_conversation
from observe_r1.ladder.build import LadderConfig, build_ladder, side_paths
from observe_r1.ladder.cache import RolloutCache, rollout_key
from observe_r1.ladder.rollouts import Sampling, step_by_step_messages
from observe_r1.training.pixels import PixelBounds
from observe_r1.training.trainer import ObserveR1Trainer, drop_empty_images
from tests.observe_r1.ladder.test_build import CountingEngine, hashed_judge  # noqa: F401
from tests.observe_r1.training.test_trainer import TINY, RecordingObserveR1, _trainer

MODEL = "tiny-qwen2.5-vl"


def picture(folder: Path, name: str, colour: str, size=(56, 56)) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(folder / name)
    return name


def mixed_rows(folder: Path) -> Path:
    """Four rows: text only (no field), text only (``images: []``), two images, one image."""
    red, blue = picture(folder, "red.png", "red"), picture(folder, "blue.png", "blue", (84, 56))
    rows = [
        {"id": "text", "question": "What is 2 + 3?", "answer": "5"},
        {"id": "empty", "images": [], "question": "What is 4 + 4?", "answer": "8"},
        {"id": "two", "images": [red, blue], "question": "How many images?", "answer": "2"},
        {"id": "one", "image": red, "question": "How many circles?", "answer": "0"},
    ]
    path = folder / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_rows_take_image_images_or_neither_and_write_back_relative(tmp_path):
    path = mixed_rows(tmp_path / "data")
    rows = read_rows(path).rows
    folder = tmp_path / "data"
    assert [row_images(r) for r in rows] == [
        [], [], [str(folder / "red.png"), str(folder / "blue.png")], [str(folder / "red.png")]
    ]  # fmt: skip
    assert "image" not in rows[0] and "images" not in rows[0]
    written = write_rows(folder / "again.jsonl", rows)
    assert written.read_text() == path.read_text()  # same fields, paths relative again
    # placeholders: one per image, in order, before the question; none for text only
    parts = [[p["type"] for p in row_conversation(r)[1]["content"]] for r in rows]
    assert parts == [["text"], ["text"], ["image", "image", "text"], ["image", "text"]]


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"image": "red.png", "images": ["red.png"]}, "fields 'image' and 'images' both given"),
        ({"images": "red.png"}, "field 'images' must be a list of paths, not a string"),
        ({"images": ["red.png", "gone.png"]}, "field 'images\\[1\\]': no such file"),
        ({"images": ["red.png", 7]}, "field 'images\\[1\\]' must be a path \\(a string\\)"),
        (
            {"images": ["red.png"] * (MAX_IMAGES + 1)},
            f"field .images.: {MAX_IMAGES + 1} images, over the limit of {MAX_IMAGES}",
        ),
        ({"image": None}, "field 'image' is null: give a path, or leave the field out"),
        ({"images": [""]}, "field 'images\\[0\\]' is empty"),
    ],
)
def test_bad_image_fields_name_file_line_and_field(tmp_path, fields, reason):
    picture(tmp_path, "red.png", "red")
    good = {"question": "q", "answer": "1"}
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(good | fields) + "\n")
    with pytest.raises(RowError, match=f"rows.jsonl:2: {reason}"):
        read_rows(path)
    result = CliRunner().invoke(app, ["eval", "--model", MODEL, "--data", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "rows.jsonl:2: field" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_official_import_round_trip_with_none_one_and_two_images(tmp_path):
    folder = tmp_path / "pics"
    red = (folder / picture(folder, "r.png", "red")).resolve()
    blue = (folder / picture(folder, "b.png", "blue")).resolve()

    def message(*images):
        parts = [{"type": "image", "image": f"file://{image}"} for image in images]
        return [{"role": "user", "content": [*parts, {"type": "text", "text": "Q?"}]}]

    records = [{"message": message(*images), "answer": "1"} for images in [(), (red, blue), (red,)]]
    source = tmp_path / "official.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = importers.import_official(source, tmp_path / "out").rows
    assert [row_images(r) for r in rows] == [[], [str(red), str(blue)], [str(red)]]
    assert "images" in rows[1] and "image" in rows[2] and not {"image", "images"} & rows[0].keys()
    again = read_rows(tmp_path / "out" / "rows.jsonl").rows
    assert [row_images(r) for r in again] == [row_images(r) for r in rows]
    back = [importers.official_row(importers.official_record(row)) for row in again]
    assert [row_images(r) for r in back] == [row_images(r) for r in rows]


def test_hf_import_of_an_image_list_column_and_empty_cells(tmp_path):
    images = [[], [Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")]]
    data = {"images": images, "question": ["q0", "q1"], "answer": ["1", "2"]}
    dataset = Dataset.from_dict(data).cast_column("images", Sequence(ImageFeature()))
    dataset.save_to_disk(str(tmp_path / "saved"))
    out = tmp_path / "out"
    rows = importers.import_hf(tmp_path / "saved", out, image_column="images").rows
    assert rows[0]["images"] == []
    assert [Path(p).name for p in rows[1]["images"]] == ["hf-1-0.png", "hf-1-1.png"]
    assert Image.open(rows[1]["images"][1]).getpixel((0, 0)) == (0, 0, 255)
    single = Dataset.from_dict({"image": [None], "question": ["q"], "answer": ["3"]})
    single.save_to_disk(str(tmp_path / "single"))
    rows = importers.import_hf(tmp_path / "single", tmp_path / "out2").rows
    assert row_images(rows[0]) == [] and "image" not in rows[0]


def test_cache_key_covers_every_image_and_keeps_the_one_image_key(tmp_path):
    path = mixed_rows(tmp_path)
    rows = read_rows(path).rows
    sampling = Sampling(n=2, do_sample=True, max_new_tokens=4)

    def key(row):
        return rollout_key("m", row, step_by_step_messages(row), sampling)

    two = rows[2]
    swapped = {**two, "images": two["images"][::-1]}
    other = {**two, "images": [two["images"][0], two["images"][0]]}
    assert len({key(two), key(swapped), key(other)}) == 3  # order and bytes of each count
    one, listed = rows[3], {**rows[3], "images": [rows[3]["image"]]}
    del listed["image"]
    assert key(one) == key(listed)  # ``images: [a]`` is ``image: a``
    messages = step_by_step_messages(one)
    before = {  # the key layout before ``images`` existed: its caches stay valid
        "model": "m", "row": "one", "image": file_sha256(one["image"]),
        "messages": messages, "sampling": sampling.as_dict(),
    }  # fmt: skip
    old = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    assert key(one) == old


@pytest.mark.usefixtures("hashed_judge")
def test_text_only_and_two_image_rows_through_the_engine_and_the_ladder(tmp_path):
    path = mixed_rows(tmp_path / "data")
    rows = read_rows(path).rows
    processor = load_processor(resolve(MODEL))
    texts = [
        processor.apply_chat_template(
            row_conversation(r), add_generation_prompt=True, tokenize=False
        )
        for r in rows
    ]
    inputs = processor(text=texts, images=open_images(rows), padding=True, return_tensors="pt")
    assert inputs["image_grid_thw"].shape[0] == 3  # 0 + 0 + 2 + 1 images, in order
    assert [t.count("<|image_pad|>") for t in texts] == [0, 0, 2, 1]

    engine = CountingEngine(MODEL)
    messages = [step_by_step_messages(r) for r in rows[:2]]
    results = engine.generate(messages, rows[:2], Sampling(2, True, 4))
    assert [len(r) for r in results] == [2, 2]  # a batch of text-only rows: no images at all

    config = LadderConfig(
        input=path, model=MODEL, out=tmp_path / "ladder.jsonl", rollouts=3, max_new_tokens=5,
        answer_max_new_tokens=3, batch_size=4,
    )  # fmt: skip
    stats = build_ladder(config, engine)
    ladder = [json.loads(line) for line in config.out.read_text().splitlines()]
    assert stats["scored_rows"] == 4 and all(r["n_rollouts"] == 3 for r in ladder)
    by_id = {r["id"]: r for r in ladder}
    assert set(by_id) <= {"text", "empty", "two", "one"}
    if "two" in by_id:  # paths relative to the ladder's folder, in order
        assert by_id["two"]["images"] == ["data/red.png", "data/blue.png"]
    assert len(RolloutCache(side_paths(config.out)["cache"])) == 8  # greedy + sampled per row


def test_pixel_bounds_reach_every_image_of_a_row():
    bounds = PixelBounds(28, 784, 1568)
    example = {"images": [Image.new("RGB", (112, 112)), Image.new("RGB", (300, 90))]}
    bounded = ObserveR1Trainer._bounded(SimpleNamespace(pixel_bounds=bounds), example)
    assert [image.size for image in bounded["images"]] == [(28, 28), (56, 28)]
    assert ObserveR1Trainer._bounded(SimpleNamespace(pixel_bounds=bounds), {"images": []}) == {
        "images": []
    }


@pytest.mark.parametrize("model", [MODEL, "tiny-llava"])
def test_empty_image_inputs_are_dropped_before_the_vision_tower(model):
    vlm = AutoModelForImageTextToText.from_pretrained(resolve(model))
    ids = torch.tensor([[5, 6, 7]])
    empty = {"pixel_values": torch.zeros(0, 3, 56, 56)}  # a text-only micro-batch's slice
    if model == MODEL:
        empty = {"pixel_values": torch.zeros(0, 1176), "image_grid_thw": torch.zeros(0, 3).long()}
    with pytest.raises((ValueError, RuntimeError)):  # what TRL's slice did without the hook
        vlm(input_ids=ids, **empty)
    vlm.register_forward_pre_hook(drop_empty_images, with_kwargs=True)
    torch.testing.assert_close(vlm(input_ids=ids, **empty).logits, vlm(input_ids=ids).logits)


class RecordingImages(RecordingObserveR1):
    def _compute_loss(self, model, inputs):
        self.num_images = getattr(self, "num_images", []) + list(inputs["num_images"])
        if inputs.get("image_grid_thw") is not None:  # one row per image trained on
            self.grids = getattr(self, "grids", []) + inputs["image_grid_thw"].tolist()
        return super()._compute_loss(model, inputs)


def test_one_training_round_and_eval_on_mixed_rows(tmp_path):
    from observe_r1.training.config import load_config

    path = mixed_rows(tmp_path / "data")
    # 4 prompts x 4 completions in one round of 2 steps; the reference model's first chunk
    # (rows "text", "empty") holds no image while the round does: the empty-pixel case
    settings = {
        "train_file": path, "output_dir": tmp_path / "run", "steps_per_generation": 2,
        "max_steps": 2, "max_completion_length": 6, "min_pixels": 784, "max_pixels": 1568,
    }  # fmt: skip
    config = load_config(TINY, [f"{k}={v}" for k, v in settings.items()])
    trainer = _trainer(config, RecordingImages)
    trainer.train()
    rollouts = [json.loads(line) for line in (tmp_path / "run" / "rollouts.jsonl").open()]
    ids = [i for i in ("text", "empty", "two", "one") for _ in range(4)]
    assert [r["row_id"] for r in rollouts] == ids
    assert sorted(trainer.num_images) == [0] * 8 + [1] * 4 + [2] * 4
    assert trainer.grids == [[1, 2, 2]] * (4 * 2 + 4 * 1)  # every image within max_pixels
    assert all(torch.isfinite(a).all() for a in trainer.used_advantages)

    out = tmp_path / "eval"
    options = ["--out", str(out), "--max-new-tokens", "4", "--batch-size", "3"]
    result = CliRunner().invoke(app, ["eval", "--model", MODEL, "--data", str(path), *options])
    assert result.exit_code == 0, result.output
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").open()]
    assert [p["id"] for p in predictions] == ["text", "empty", "two", "one"]
    assert json.loads((out / "eval.json").read_text())["rows"] == 4


def test_a_training_file_of_text_only_rows_trains(tmp_path):
    from observe_r1.training.config import load_config

    rows = [
        {"id": "a", "question": "What is 2 + 3?", "answer": "5"},
        {"id": "b", "images": [], "question": "What is 4 + 4?", "answer": "8"},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    settings = {"train_file": path, "output_dir": tmp_path / "run", "max_steps": 1,
                "max_completion_length": 6}  # fmt: skip
    config = load_config(TINY, [f"{k}={v}" for k, v in settings.items()])
    trainer = _trainer(config, RecordingInputs)
    trainer.train()
    assert trainer.batches and not any("pixel_values" in keys for keys in trainer.batches)
    assert all(torch.isfinite(a).all() for a in trainer.used_advantages)
    assert trainer.state.global_step == 1


class RecordingInputs(RecordingObserveR1):
    """Records the input keys of every loss micro-batch."""

    def _compute_loss(self, model, inputs):
        self.batches = getattr(self, "batches", []) + [set(inputs)]
        return super()._compute_loss(model, inputs)
