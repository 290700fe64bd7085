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
