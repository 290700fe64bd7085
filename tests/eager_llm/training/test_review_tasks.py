"""The review tasks in a training run: samples from Amazon review text, a note where a dataset
has none, an error when only review tasks are asked for there."""

import gzip
import json

import pytest
from typer.testing import CliRunner

from eager_llm.cli import app
from eager_llm.training import build_trainer, load_config
from tests.eager_llm.training.toy import CONFIG, N_ITEMS, SEQUENCES, toy_index, write_index

TASKS = "tasks=[seqrec, item_search, preference_extraction]"


def write_amazon(folder):
    """``toy.SEQUENCES`` as an Amazon 2014 review file (every review has text) + metadata."""
    folder.mkdir()
    reviews = [
        {
            "reviewerID": user,
            "asin": f"i{item}",
            "unixReviewTime": time,
            "summary": f"{user} on {item}",
            "reviewText": f"What {user} thinks of item {item}.",
        }
        for user, items in SEQUENCES.items()
        for time, item in enumerate(items)
    ]
    with gzip.open(folder / "reviews_Toys_5.json.gz", "wt") as file:
        file.writelines(json.dumps(review) + "\n" for review in reviews)
    with gzip.open(folder / "meta_Toys.json.gz", "wt") as file:
        file.writelines(repr({"asin": f"i{i}", "title": f"Toy {i}"}) + "\n" for i in range(N_ITEMS))
    return folder / "reviews_Toys_5.json.gz"


def trainer_samples(index, tmp_path, *overrides):
    config = load_config(
        CONFIG, "train", list(overrides), index=str(index), output_dir=str(tmp_path)
    )
    return build_trainer(config).train_dataset.samples


def test_amazon_reviews_become_samples_of_training_items_only(tmp_path, capsys):
    index = write_index(tmp_path / "index", write_amazon(tmp_path / "amazon"))
    samples = trainer_samples(index, tmp_path / "run", TASKS)
    search = [s for s in samples if s.task == "item_search"]
    # every training item (all but the last two of each user) has one review
    assert len(search) == sum(len(items) - 2 for items in SEQUENCES.values())
    assert "What u0 thinks of item 0." in search[0].prompt and search[0].target == 0
    assert not any("of item 5." in s.prompt for s in search[:4])  # u0's test item
    preference = [s for s in samples if s.task == "preference_extraction"]
    assert preference[0].response == "u0 on 0; u0 on 1; u0 on 2; u0 on 3"
    assert len(preference) == len(SEQUENCES) and "skipped" not in capsys.readouterr().out


def test_review_tasks_are_skipped_without_review_text(tmp_path, capsys):
    index = toy_index(tmp_path)
    samples = trainer_samples(index, tmp_path / "run")  # the default: every task
    assert {s.task for s in samples} == {
        "seqrec",
        "item2index",
        "index2item",
        "fusion_index2title",
        "fusion_title2index",
    }
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"note: item_search, preference_extraction skipped: {tmp_path / 'data'} has no review "
        "text (only Amazon review files have it)"
    )


@pytest.mark.parametrize("tasks", ["[item_search]", "[item_search, preference_extraction]"])
def test_only_review_tasks_without_review_text_is_an_error(tmp_path, tasks):
    index = toy_index(tmp_path)
    out = tmp_path / "run"
    args = ["train", "--config", CONFIG, "--index", index, "--output-dir", out]
    result = CliRunner().invoke(app, [str(a) for a in args] + ["--set", f"tasks={tasks}"])
    assert result.exit_code == 2 and not out.exists()
    assert result.output.startswith(f"error: --set tasks={tasks}: 'tasks'")
    assert "need review text" in result.output and len(result.output.splitlines()) == 1
