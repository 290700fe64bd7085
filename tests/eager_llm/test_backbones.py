"""Each causal-LM backbone of the zoo through the pipeline: index tokens, the collator's rows
in its tokenizer's conventions, both training stages, then ``eager-llm eval`` (trie beam
search). tiny-llama: untied embeddings, pad != EOS; tiny-qwen2: Qwen2's tokenizer (no BOS,
pad = EOS = ``<|endoftext|>``) and tied embeddings, which must stay tied; tiny-qwen3: the same
tokenizer with EOS = ``<|im_end|>`` != pad, tied. Trie decoding against ``generate`` runs on
all of them in ``test_decoding``."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from eager_llm.cli import app
from eager_llm.tasks import Sample
from eager_llm.training import ResponseCollator, load_lm
from model_zoo import resolve
from tests.eager_llm.training.toy import CONFIG, write_dataset

# name -> (architecture, tied embeddings, pad = EOS)
BACKBONES = {
    "tiny-llama": ("LlamaForCausalLM", False, False),
    "tiny-qwen2": ("Qwen2ForCausalLM", True, True),
    "tiny-qwen3": ("Qwen3ForCausalLM", True, False),
}
INDEX = {"i1": ["<a_0>", "<b_1>"], "i2": ["<a_1>", "<b_0>"]}


def ok(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def tied(lm) -> bool:
    return lm.get_output_embeddings().weight is lm.get_input_embeddings().weight


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("backbones")
    data = write_dataset(root / "data")
    ok("index", "--dataset", data, "--out", root / "index", "--k", 4, "--k-core", 1,
       "--epochs", 1, "--cache-dir", root / "cache")  # fmt: skip
    return root / "index"


@pytest.mark.parametrize("name", BACKBONES)
def test_rows_follow_the_tokenizers_conventions(name):
    tokenizer, lm = load_lm(resolve(name), INDEX)
    _, is_tied, pad_is_eos = BACKBONES[name]
    assert tied(lm) == is_tied
    assert tokenizer.convert_tokens_to_ids("<b_1>") == len(tokenizer) - 1
    assert lm.get_input_embeddings().weight.shape[0] == len(tokenizer)
    samples = [Sample("Next item?", "<a_0><b_1>", "seqrec", 0), Sample("A", "<a_1>", "seqrec", 1)]
    batch = ResponseCollator(tokenizer, max_length=32)(samples)
    prompt = tokenizer("Next item?", add_special_tokens=False)["input_ids"]
    response = tokenizer.convert_tokens_to_ids(["<a_0>", "<b_1>"])
    row = [*prompt, *response, tokenizer.eos_token_id]  # no BOS: no tokenizer adds one
    assert batch["input_ids"][0].tolist() == row
    assert batch["labels"][0].tolist() == [-100] * len(prompt) + row[len(prompt) :]
    short = batch["attention_mask"][1].sum()  # the EOS is labelled, the padding after it not
    assert batch["labels"][1, short - 1] == tokenizer.eos_token_id
    assert (batch["labels"][1, short:] == -100).all()
    assert (batch["input_ids"][1, short:] == tokenizer.pad_token_id).all()
    assert (tokenizer.pad_token_id == tokenizer.eos_token_id) == pad_is_eos


@pytest.mark.slow
@pytest.mark.parametrize("name", BACKBONES)
def test_both_stages_and_eval(index, name, tmp_path):
    common = ["--config", CONFIG, "--index", index, "--max-steps", 2, "--set", f"model={name}"]
    ok("train", *common, "--output-dir", tmp_path / "stage1")
    ok("anneal", *common, "--from", tmp_path / "stage1", "--output-dir", tmp_path / "anneal")
    stage1, anneal = (
        AutoModelForCausalLM.from_pretrained(tmp_path / run / "final")
        for run in ("stage1", "anneal")
    )
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "anneal" / "final")
    architecture, is_tied, _ = BACKBONES[name]
    assert type(anneal).__name__ == architecture
    assert tied(anneal) == tied(stage1) == is_tied
    assert tokenizer.bos_token is None and tokenizer.pad_token is not None
    # Annealing trains the index-token rows only (and LoRA): the base vocabulary is frozen.
    base = len(AutoTokenizer.from_pretrained(resolve(name)))
    before, after = stage1.get_input_embeddings().weight, anneal.get_input_embeddings().weight
    assert torch.equal(after[:base], before[:base]) and not torch.equal(after[base:], before[base:])

    ok("eval", "--run", tmp_path / "anneal", "--beams", 5, "--limit-users", 3)
    report = json.loads((tmp_path / "anneal" / "eval.json").read_text())
    run = next(r for r in report["results"] if r["method"].startswith("EAGER-LLM"))
    assert len(run["ranks"]) == 3 and 0 <= run["recall@10"] <= 1
