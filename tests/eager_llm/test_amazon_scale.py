"""Amazon 2014 files end to end at two sizes: generate, load + 5-core, index build, a few
training steps of the tiny model; the time of each stage is printed.

The default run uses a small catalogue; ``-m slow`` runs the realistic size (20,000 users,
10,000 items: the scale of Beauty's 22,363 users and 12,101 items).
"""

import json
import time

import pytest

from eager_llm.data import dataset_stats
from eager_llm.data.synthetic import write_amazon_2014
from eager_llm.encoders import TrainConfig
from eager_llm.indexing import IndexConfig, build_index, check_bijection, load_item_index
from eager_llm.training import load_config, run
from tests.eager_llm.training.toy import CONFIG

STEPS = 3


def pipeline(root, users, items, capsys):
    """Every stage on files of ``users`` x ``items``; returns (stats, index stats, run)."""
    seconds = {}

    def timed(stage, work, *args, **kwargs):
        started = time.perf_counter()
        result = work(*args, **kwargs)
        seconds[stage] = time.perf_counter() - started
        return result

    reviews = timed("generate", write_amazon_2014, root / "amazon", users=users, items=items)
    stats = timed("load + 5-core", dataset_stats, reviews)
    config = IndexConfig(train=TrainConfig(epochs=1, patience=None), cache_root=str(root / "c"),
                         progress=False)  # fmt: skip
    index = timed("index", build_index, reviews, root / "index", config)
    settings = load_config(
        CONFIG, "train", index=str(root / "index"), output_dir=str(root / "run"), max_steps=STEPS
    )
    final = timed(f"train ({STEPS} steps)", run, settings)
    with capsys.disabled():
        print(f"\n{users} users x {items} items: {stats['users']} users, {stats['items']} items, "
              f"{stats['interactions']} interactions after 5-core")  # fmt: skip
        for stage, value in seconds.items():
            print(f"  {stage:<16} {value:7.1f} s")
        print(
            "  index stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in index["timings_s"].items())
        )
    return stats, index, final


def check(root, stats, index, final, capsys):
    assert index["num_items"] == stats["items"]
    item_index = load_item_index(root / "index" / "item_index.json")
    check_bijection(item_index)
    assert len(item_index) == stats["items"]
    assert (final / "config.json").is_file()
    losses = [
        json.loads(line) for line in (root / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in losses if "loss" in r] == list(range(1, STEPS + 1))
    assert "skipped" not in capsys.readouterr().out  # the review tasks ran


def test_small_amazon_files_end_to_end(tmp_path, capsys):
    stats, index, final = pipeline(tmp_path, 400, 200, capsys)
    assert stats["users"] > 380 and stats["items"] == 200  # repeated pairs cost a few users
    check(tmp_path, stats, index, final, capsys)


@pytest.mark.slow
def test_realistic_size_amazon_files_end_to_end(tmp_path, capsys):
    stats, index, final = pipeline(tmp_path, 20_000, 10_000, capsys)
    assert stats["users"] > 19_000 and stats["items"] == 10_000
    assert index["levels"] == 4  # ceil(log_256 10,000) = 2 per source
    check(tmp_path, stats, index, final, capsys)
