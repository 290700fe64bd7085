"""What makes stage 1 learn: the LM head at labelled positions, per-part learning rates,
ranking validation and best-checkpoint selection (tiny-llama on the toy index)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from eager_llm.baselines import most_popular
from eager_llm.metrics import evaluate_rankings
from eager_llm.training import build_trainer, load_config, run
from eager_llm.training.model import labelled_lm_loss
from eager_llm.training.run_log import read_validation_ranks
from eager_llm.training.trainer import RowLearningRate
from tests.eager_llm.training.toy import (
    CONFIG,
    N_ITEMS,
    SEQUENCES,
    script_validation,
    toy_index,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("learning")
    toy_index(root)
    return root


def config(root, output_dir, *overrides):
    return load_config(
        CONFIG,
        "train",
        list(overrides),
        index=str(root / "index"),
        output_dir=str(root / output_dir),
    )


def test_labelled_loss_equals_the_full_logit_loss(root):
    trainer = build_trainer(config(root, "loss", "gct_semantic_weight=0", "gct_behaviour_weight=0"))
    batch = trainer.data_collator(trainer.train_dataset.samples[:4])
    lm = trainer.model.lm
    reference = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   labels=batch["labels"]).loss  # fmt: skip
    hidden = lm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    ours = labelled_lm_loss(hidden.last_hidden_state, batch["labels"], lm.lm_head)
    assert torch.allclose(ours, reference, atol=1e-5)
    assert torch.allclose(trainer.model(**batch)["lm_loss"], reference, atol=1e-5)


def test_row_learning_rate_is_an_exact_per_row_learning_rate():
    torch.manual_seed(0)
    start = torch.randn(6, 3)
    grads = [torch.randn(6, 3) for _ in range(3)]

    def train(lr, ratio=None):
        weight = torch.nn.Parameter(start.clone())
        optimizer = torch.optim.AdamW([weight], lr=lr, weight_decay=0.1)
        if ratio is not None:
            RowLearningRate(optimizer, [(weight, torch.tensor([1, 4]))], ratio)
        for grad in grads:
            weight.grad = grad.clone()
            optimizer.step()
        return weight.detach()

    mixed, slow, fast = train(1e-2, ratio=5.0), train(1e-2), train(5e-2)
    assert torch.allclose(mixed[[1, 4]], fast[[1, 4]], atol=1e-6)
    assert torch.equal(mixed[[0, 2, 3, 5]], slow[[0, 2, 3, 5]])


def test_the_learning_rates_reach_the_optimizer(root):
    trainer = build_trainer(
        config(root, "rates", "index_token_lr=0.01", "projector_lr=0.05", "learning_rate=0.001")
    )
    optimizer = trainer.create_optimizer()
    projectors = {id(p) for p in trainer.model.gct.parameters()}
    rates = {
        "projector" if id(p) in projectors else "rest": group["lr"]
        for group in optimizer.param_groups
        for p in group["params"]
    }
    assert rates == {"projector": 0.05, "rest": 0.001}
    row_rate = trainer.row_learning_rate
    assert row_rate.ratio == pytest.approx(10.0)
    index_ids = set(row_rate.rows[0][1].tolist())
    assert index_ids == set(trainer.index_token_ids) and len(row_rate.rows) == 2  # untied head


def test_anneal_gives_the_trainable_token_deltas_their_group(root):
    stage1 = run(config(root, "s1"))
    anneal = load_config(CONFIG, "anneal", ["index_token_lr=0.02"], index=str(root / "index"),
                         output_dir=str(root / "s2"))  # fmt: skip
    trainer = build_trainer(anneal, base=str(stage1))
    optimizer = trainer.create_optimizer()
    by_rate = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            by_rate.setdefault(group["lr"], []).append(p)
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    assert all("trainable_tokens_delta" in names[id(p)] for p in by_rate[0.02])
    assert all("lora_" in names[id(p)] for p in by_rate[anneal.learning_rate])
    assert trainer.row_learning_rate is None  # the embedding matrix itself is frozen


def test_validation_runs_on_fixed_users_and_final_is_the_best_checkpoint(root, monkeypatch):
    settings = config(
        root, "best", "eval_strategy=steps", "eval_steps=1", "save_steps=1",
        "load_best_model_at_end=true", "metric_for_best_model=eval_recall@10", "valid_users=3",
    )  # fmt: skip
    trainer = build_trainer(settings)
    measured = trainer.validation(trainer.model.lm.eval(), trainer.processing_class)
    assert set(measured) == {"recall@10", "ndcg@10", "n_users", "ranks"}
    assert measured["n_users"] == 3 == len(measured["ranks"])
    assert 0 <= measured["ndcg@10"] <= measured["recall@10"] <= 1
    assert measured["recall@10"] == np.mean(measured["ranks"] < 10)

    script_validation(monkeypatch, [0.2, 0.6, 0.4, 0.1], n_users=3)  # step 2 is the best
    final = run(settings)
    out = root / "best"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    curve = [(r["step"], r["eval_recall@10"]) for r in records if "eval_recall@10" in r]
    assert curve == [(1, 0.2), (2, 0.6), (3, 0.4), (4, 0.1)]
    saved = json.loads((final / "run_settings.json").read_text())
    assert saved["best_checkpoint"].endswith("checkpoint-2") and saved["best_metric"] == 0.6
    best = load_file(out / "checkpoint-2" / "model.safetensors")
    last = load_file(out / "checkpoint-4" / "model.safetensors")
    chosen = load_file(final / "model.safetensors")
    key = "model.embed_tokens.weight"
    assert torch.equal(chosen[key], best[key]) and not torch.equal(chosen[key], last[key])
    assert (out / "learning_curve.png").is_file()
    baselines = json.loads((out / "validation_baselines.json").read_text())
    assert set(baselines) == {"n_users", "seen", "most popular", "co-occurrence"}  # no SASRec here
    assert baselines["seen"] == "keep"


def test_validation_can_remove_each_users_training_items(root):
    settings = config(root, "removed", "eval_strategy=steps", "valid_users=6",
                      "valid_seen=remove", "valid_beam_scores=allowed")  # fmt: skip
    validation = build_trainer(settings).validation
    assert validation.targets == [s[-2] for s in SEQUENCES.values()]  # every toy user
    assert validation.exclude == [[f"i{i}" for i in s[:-2]] for s in SEQUENCES.values()]
    assert validation.beam_scores == "allowed"
    baselines = json.loads((root / "removed" / "validation_baselines.json").read_text())
    assert baselines["seen"] == "remove"
    train = [s[:-2] for s in SEQUENCES.values()]
    popular = most_popular([np.array(t) for t in train], N_ITEMS, 6, 10, histories=train,
                           seen="remove")  # fmt: skip
    targets = [s[-2] for s in SEQUENCES.values()]
    assert baselines["most popular"] == evaluate_rankings(popular, targets, ks=(10,))


def test_eval_on_start_alone_validates_the_untrained_model(root):
    out = root / "onstart"
    run(config(root, "onstart", "eval_on_start=true", "valid_users=2", "max_steps=1"))
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    validations = [r for r in records if "eval_recall@10" in r]
    assert [r["step"] for r in validations] == [0]
    ranks = read_validation_ranks(out)  # user by user, for paired comparisons of two steps
    assert list(ranks) == [0] and len(ranks[0]) == 2
    assert np.mean(ranks[0] < 10) == validations[0]["eval_recall@10"]


def test_the_starting_model_is_a_candidate_for_the_best_checkpoint(root, monkeypatch):
    """With eval_on_start, a run whose validation only falls keeps its starting weights
    (annealing then falls back to the stage-1 model instead of its least-bad step)."""
    settings = config(
        root, "start-best", "eval_strategy=steps", "eval_steps=2", "save_steps=2",
        "eval_on_start=true", "load_best_model_at_end=true", "valid_users=2",
    )  # fmt: skip
    key = "model.embed_tokens.weight"
    start = build_trainer(settings).model.lm.state_dict()[key].clone()  # seeded: run's start
    script_validation(monkeypatch, [0.5, 0.3, 0.1], n_users=2)  # steps 0, 2, 4: start best
    final = run(settings)
    saved = json.loads((final / "run_settings.json").read_text())
    assert saved["best_checkpoint"].endswith("checkpoint-0") and saved["best_metric"] == 0.5
    chosen = load_file(final / "model.safetensors")
    assert torch.equal(chosen[key], start)
    last = load_file(root / "start-best" / "checkpoint-4" / "model.safetensors")
    assert not torch.equal(last[key], start)  # training did move the weights
