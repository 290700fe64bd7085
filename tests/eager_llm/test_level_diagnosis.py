"""experiments/eager_level_diagnosis.py end to end on a 2-step tiny-llama run of the toy
catalogue: the page, every validation user's ranks, and the ranks against beam search."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from eager_llm.data import leave_one_out
from eager_llm.level_ranks import LevelRank, survival
from eager_llm.prompt_ids import encode_prompts
from eager_llm.run_decoder import RunDecoder
from eager_llm.training import load_config, run
from eager_llm.training.index_files import load_index, load_indexed_dataset
from eager_llm.training.validation import sample_users
from tests.eager_llm.training.toy import CONFIG, SEQUENCES, toy_index

REPO = Path(__file__).resolve().parents[2]


def load_script():
    name = "eager_level_diagnosis"
    spec = importlib.util.spec_from_file_location(name, REPO / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


script = load_script()


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("diagnosis")
    index = toy_index(root)
    config = load_config(
        CONFIG, "train", ["max_steps=2"], index=str(index), output_dir=str(root / "stage1")
    )
    run(config)
    return root


@pytest.fixture(scope="module")
def diagnosed(toy_run):
    page = script.main(
        ["--run", str(toy_run / "stage1"), "--page", str(toy_run / "page.md"),
         "--out", str(toy_run / "out")]
    )  # fmt: skip
    rows = [json.loads(line) for line in (toy_run / "out" / "ranks.jsonl").read_text().splitlines()]
    return page.read_text(), rows


def test_page_states_the_command_then_one_row_per_level(diagnosed):
    text, _ = diagnosed
    assert text.index("```bash") < text.index("| level |")
    assert "--run" in text.split("```")[1]
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in table[2:]] == ["| 1", "| 2", "| end (EOS)"]
    assert "6 validation users" in text and "precision\n  fp32" in text


def test_every_validation_user_of_the_run_in_order(toy_run, diagnosed):
    _, rows = diagnosed
    files = load_index(toy_run / "index")
    split = leave_one_out(load_indexed_dataset(files)[0], max_history=20)
    users = sample_users(split.valid, 500, 0)  # tiny.yaml: seed 0, valid_users 500
    assert len(rows) == len(users) == len(SEQUENCES)
    assert [r["user"] for r in rows] == [int(e.user) for e in users]
    assert [r["item"] for r in rows] == [files.item_ids[e.target] for e in users]
    # <a_0..2> then 4, 4 or 2 <b_*> under the true <a_*>, then the terminator alone
    for row in rows:
        a = int(files.item_index[row["item"]][0][3])
        assert [level[0] for level in row["model"]] == [3, 2 if a == 2 else 4, 1]
        assert [level[0] for level in row["prior"]] == [3, 2 if a == 2 else 4, 1]


def test_ranks_agree_with_beam_search(toy_run, diagnosed):
    """Level 1 from the prompt alone gives the same ranks; every target a 2-beam search
    finds survives the top 2 of every level (the bound the page states)."""
    _, rows = diagnosed
    found = script.diagnose(toy_run / "stage1", progress=None)
    model = [row["model"] for row in found["rows"]]
    assert [[[r.allowed, r.above, r.tied] for r in user] for user in model] == [
        row["model"] for row in rows
    ]
    run_, _, files, _, users, prompts, _ = script.validation_setup(toy_run / "stage1")
    decoder = RunDecoder(run_)
    lead, texts = encode_prompts(decoder.tokenizer, prompts)
    level1 = decoder.trie.allowed_tokens(0).tolist()
    for row, user, text in zip(found["rows"], model, texts, strict=True):
        with torch.inference_mode():
            logits = decoder.model(input_ids=torch.tensor([[*lead, *text]])).logits[0, -1]
        scores = logits[level1].numpy()
        own = scores[level1.index(decoder.trie.sequences[row["item"]][0])]
        above, tied = int((scores > own).sum()), int((scores == own).sum()) - 1
        assert user[0] == LevelRank(len(level1), above, tied)
    ranked = decoder.top_k(prompts, 2)
    hits = np.array(
        [files.item_ids[e.target] in {item for item, _ in items}
         for e, items in zip(users, ranked, strict=True)]
    )  # fmt: skip
    assert hits.any()
    assert (survival(model, 2)[hits, -1] == 1).all()


def test_final_step_is_the_best_checkpoint_only_when_one_was_loaded(tmp_path):
    (tmp_path / "final").mkdir()
    records = [{"step": 0, "eval_recall@10": 0.2}, {"step": 10, "loss": 1.0},
               {"step": 30, "eval_recall@10": 0.1}]  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    settings = {"best_checkpoint": str(tmp_path / "checkpoint-0"), "best_metric": 0.2}
    (tmp_path / "final" / "run_settings.json").write_text(json.dumps(settings))
    assert script.final_step(tmp_path, {"load_best_model_at_end": True})[0] == 0
    assert script.final_step(tmp_path, {"load_best_model_at_end": False})[0] == 30
    # a resumed run that lost its best checkpoint (runs/eager_recipe/anneal) ends at its last step
    settings["best_checkpoint"] = None
    (tmp_path / "final" / "run_settings.json").write_text(json.dumps(settings))
    step, why = script.final_step(tmp_path, {"load_best_model_at_end": True})
    assert step == 30 and "no best checkpoint" in why
    ranks = [{"step": 0, "ranks": [0, 1, None]}, {"step": 30, "ranks": [None, 3, 12]}]
    (tmp_path / "validation_ranks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ranks))
    line = script.validation_check(tmp_path, {"load_best_model_at_end": True},
                                   np.array([0.0, 1.0, 0.5]), 10)  # fmt: skip
    assert "step 30" in line and "found 1 of 3" in line and "best validation point" in line
    assert "1.0 survive" in line and "1.5 users survive" in line
