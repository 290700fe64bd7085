"""``build_index`` and ``eager-llm index`` end to end: ML-100K, duplicates, cache, bad input."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from eager_llm.cli import app
from eager_llm.encoders import SASRec, SASRecConfig, TrainConfig
from eager_llm.indexing import IndexConfig, build_index, check_bijection, load_item_index
from eager_llm.indexing.dki import auto_k
from tests.eager_llm.interrupt import dies_on_call

runner = CliRunner()
ONE_EPOCH = TrainConfig(epochs=1, patience=None)


def test_movielens_100k_dki_index_is_a_bijection_and_cached(tmp_path):
    config = IndexConfig(
        k=16,
        sasrec=SASRecConfig(dim=32, num_blocks=1),
        train=TrainConfig(epochs=1, patience=None, negatives=128),
        cache_root=str(tmp_path / "cache"),
        progress=False,
    )
    stats = build_index("movielens-100k", tmp_path / "a", config)
    assert stats["num_items"] == 1349
    assert stats["levels"] == 6  # ceil(log_16 1349) = 3 per source, no collision
    assert stats["level_sources"] == ["semantic"] * 3 + ["behaviour"] * 3
    assert stats["collision_rate"] == 0 and stats["extra_tokens"] == 0
    assert stats["cache_hits"] == {"semantic": False, "behaviour": False}
    assert [level["used"] for level in stats["codebook_usage"]][:1] == [16]
    assert set(stats["timings_s"]) == {
        "load",
        "behaviour",
        "semantic",
        "quantise",
        "collisions",
        "write",
    }

    folder = tmp_path / "a"
    item_index = load_item_index(folder / "item_index.json")
    items = json.loads((folder / "items.json").read_text())
    assert list(item_index) == items and len(items) == 1349
    check_bijection(item_index)
    assert all(len(tokens) == 6 for tokens in item_index.values())
    assert all(
        t[1] == "abcdef"[level] for tokens in item_index.values() for level, t in enumerate(tokens)
    )
    assert np.load(folder / "semantic_embeddings.npy").shape == (1349, 384)
    behaviour = np.load(folder / "behaviour_embeddings.npy")
    assert behaviour.shape == (1349, 32)
    sasrec = SASRec.load(folder / "sasrec")
    assert np.array_equal(sasrec.item_embeddings().detach().numpy(), behaviour)
    assert json.loads((folder / "index_stats.json").read_text())["levels"] == 6

    again = build_index("movielens-100k", tmp_path / "b", config)
    assert again["cache_hits"] == {"semantic": True, "behaviour": True}
    assert load_item_index(tmp_path / "b" / "item_index.json") == item_index


def write_atomic(folder, titles, sequences):
    """RecBole files: item ``i`` has ``titles[i]``; ``sequences`` lists each user's items."""
    folder.mkdir()
    inter = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user, sequence in enumerate(sequences):
        inter += [f"u{user}\ti{item}\t{time}" for time, item in enumerate(sequence)]
    (folder / "toy.inter").write_text("\n".join(inter) + "\n")
    rows = [f"i{item}\t{title}\tDrama" for item, title in enumerate(titles)]
    (folder / "toy.item").write_text(
        "\n".join(["item_id:token\ttitle:token\tgenre:token_seq", *rows]) + "\n"
    )


@pytest.fixture
def duplicates(tmp_path):
    """30 items with only 10 distinct titles (each title three times), 40 users."""
    rng = np.random.default_rng(0)
    sequences = [rng.permutation(30)[:8] for _ in range(40)]
    write_atomic(tmp_path / "dup", [f"Movie {item % 10}" for item in range(30)], sequences)
    return tmp_path / "dup"


def test_identical_titles_collide_and_are_resolved(tmp_path, duplicates):
    cache = str(tmp_path / "cache")
    config = IndexConfig(indexer="semantic", k=4, train=ONE_EPOCH, cache_root=cache, progress=False)
    stats = build_index(duplicates, tmp_path / "semantic", config)
    assert stats["collision_rate"] == 1.0  # every title is shared by three items
    assert stats["colliding_groups"] == 10 and stats["largest_group"] == 3
    assert stats["levels"] == 2 + 1 and stats["level_sources"][-1] == "suffix"
    assert stats["extra_tokens"] == 3
    item_index = load_item_index(tmp_path / "semantic" / "item_index.json")
    assert item_index["i0"][:2] == item_index["i10"][:2] == item_index["i20"][:2]
    assert sorted(item_index[f"i{i}"][2] for i in (0, 10, 20)) == ["<c_0>", "<c_1>", "<c_2>"]

    dki = build_index(
        duplicates,
        tmp_path / "dki",
        IndexConfig(k=4, train=ONE_EPOCH, cache_root=cache, progress=False),
    )
    assert dki["collision_rate"] == 0 and dki["levels"] == 2 + 3  # behaviour tells them apart
    assert dki["cache_hits"] == {"semantic": True, "behaviour": True}


def test_index_cli_builds_and_reports(tmp_path, duplicates):
    args = ["index", "--dataset", str(duplicates), "--out", str(tmp_path / "out"), "--k", "4"]
    args += ["--indexer", "rq-kmeans", "--epochs", "1", "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "collision_rate" in result.output and "SASRec valid recall@10" in result.output
    load_item_index(tmp_path / "out" / "item_index.json")  # checks the bijection


def test_index_cli_auto_k_prints_the_level_statistics(tmp_path, duplicates):
    args = ["index", "--dataset", str(duplicates), "--out", str(tmp_path / "out"), "--k", "auto"]
    args += ["--indexer", "semantic", "--epochs", "1", "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "out" / "index_stats.json").read_text())
    assert stats["k"] == auto_k(stats["num_items"]) and stats["config"]["k"] == "auto"
    assert [s["level"] for s in stats["level_statistics"]] == list(range(stats["levels"]))
    assert stats["level_statistics"][-1]["decided"] == 1.0
    assert "level 0 (semantic)" in result.output and "decided" in result.output
    bad = runner.invoke(app, [*args[:-6], "--k", "many"])
    assert bad.exit_code == 2 and "--k must be an integer >= 2 or 'auto'" in bad.output


def test_index_cli_bad_input_is_one_error_line(tmp_path, duplicates):
    out = ["--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    missing = runner.invoke(app, ["index", "--dataset", str(tmp_path / "nothing"), *out])
    assert missing.exit_code == 2 and missing.output.startswith("error: ")
    assert missing.output.count("\n") == 1
    unknown = runner.invoke(app, ["index", "--dataset", str(duplicates), "--indexer", "x", *out])
    assert unknown.exit_code == 2 and "error: unknown indexer 'x'" in unknown.output
    (duplicates / "toy.item").write_text("item_id:token\ttitle:weird\ni0\tMovie\n")
    column = runner.invoke(app, ["index", "--dataset", str(duplicates), *out])
    assert (
        column.exit_code == 2 and "error: " in column.output and "unknown column" in column.output
    )

    short = tmp_path / "short"
    sequences = [[0, 1, 2, 3, 4], [4, 5], [0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5]]
    write_atomic(short, [f"Movie {i}" for i in range(6)], sequences)
    args = ["index", "--dataset", str(short), "--k-core", "2", "--k", "2", "--epochs", "1", *out]
    too_short = runner.invoke(app, args)
    assert too_short.exit_code == 2
    assert too_short.output.startswith("error: 1 users have fewer than 3 interactions")
    skipped = runner.invoke(app, [*args, "--skip-invalid"])
    assert skipped.exit_code == 0, skipped.output


def test_an_interrupted_behaviour_training_goes_on_from_its_epoch_and_leaves_no_file(
    tmp_path, duplicates, monkeypatch
):
    """The index's SASRec checkpoints every epoch beside the cache entry; a build killed in
    epoch 3 resumes there (same embeddings as an uninterrupted build), then the file goes."""
    import eager_llm.encoders.behaviour as behaviour

    three = TrainConfig(epochs=3, patience=1_000, negatives=8)

    def config(cache):
        return IndexConfig(k=4, train=three, cache_root=str(tmp_path / cache), progress=False)

    build_index(duplicates, tmp_path / "reference", config("cache-a"))
    measured = behaviour.evaluate
    monkeypatch.setattr(behaviour, "evaluate", dies_on_call(measured, 3))  # epoch 3
    with pytest.raises(KeyboardInterrupt):
        build_index(duplicates, tmp_path / "resumed", config("cache-b"))
    [left] = (tmp_path / "cache-b").glob(".behaviour-*.epoch.pt")
    monkeypatch.setattr(behaviour, "evaluate", measured)
    stats = build_index(duplicates, tmp_path / "resumed", config("cache-b"))
    assert stats["cache_hits"]["behaviour"] is False and not left.exists()
    [a], [b] = ((tmp_path / c).glob("behaviour-*/embeddings.npy") for c in ("cache-a", "cache-b"))
    assert np.array_equal(np.load(a), np.load(b))
