"""Both stages end to end on tiny-llama: files, gradients, the frozen base of stage 2, resume."""

import json

import pytest
import torch
import typer
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaForCausalLM,
    TrainerCallback,
)
from typer.testing import CliRunner

from eager_llm.cli.train import anneal_command, train_command
from eager_llm.training import PROJECTORS, build_trainer, load_config, run, save_final
from model_zoo import resolve
from tests.eager_llm.training.toy import CONFIG, script_validation, toy_index

STEPS = 4  # tiny.yaml: max_steps 4, a checkpoint every 2 steps


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("eager")
    toy_index(root)
    return root


def cli(*args: str) -> None:
    app = typer.Typer()
    app.command("train")(train_command)
    app.command("anneal")(anneal_command)
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def stage1(root):
    cli("train", "--config", CONFIG, "--index", root / "index", "--output-dir", root / "stage1")
    return root / "stage1"


def config(root, stage, output_dir, *overrides):
    return load_config(
        CONFIG, stage, list(overrides), index=str(root / "index"), output_dir=str(root / output_dir)
    )


def metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def losses(folder):
    """The metrics records without their timing."""
    return [{k: v for k, v in r.items() if k != "samples_per_second"} for r in metrics(folder)]


def test_stage1_writes_a_plain_model_projectors_and_logs(stage1):
    final = stage1 / "final"
    model = AutoModelForCausalLM.from_pretrained(final)
    tokenizer = AutoTokenizer.from_pretrained(final)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert len(tokenizer) == model.get_input_embeddings().weight.shape[0]
    assert tokenizer.convert_tokens_to_ids("<b_3>") != tokenizer.unk_token_id
    assert json.loads((final / "item_index.json").read_text())["i7"] == ["<a_1>", "<b_3>"]
    projectors = load_file(stage1 / PROJECTORS)
    assert projectors["semantic.weight"].shape == (8, 64)
    assert projectors["behaviour.weight"].shape == (6, 64)
    assert (stage1 / "checkpoint-2" / PROJECTORS).is_file()
    assert (stage1 / "loss_curve.png").is_file()
    records = metrics(stage1)
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    assert set(records[0]) == {
        "step", "samples", "loss", "lm_loss", "gct_sem", "gct_beh", "learning_rate",
        "samples_per_second",
    }  # fmt: skip
    assert any(r["gct_sem"] is not None for r in records)


def seqrec_batch(trainer):
    samples = [s for s in trainer.train_dataset.samples if s.task == "seqrec"][:3]
    return trainer.data_collator(samples)


def test_projectors_train_in_stage1_and_are_absent_in_stage2(root, stage1):
    trainer = build_trainer(config(root, "train", "grad1"))
    trainer.model(**seqrec_batch(trainer))["loss"].backward()
    for parameter in trainer.model.gct.parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0
    assert trainer.model.lm.lm_head.weight.grad.abs().sum() > 0

    trainer = build_trainer(config(root, "anneal", "grad2"), base=str(stage1 / "final"))
    assert trainer.model.gct is None
    output = trainer.model(**seqrec_batch(trainer))
    assert set(output) == {"loss", "lm_loss"}
    output["loss"].backward()
    for name, parameter in trainer.model.named_parameters():
        if parameter.requires_grad:
            assert "lora_" in name or "trainable_tokens_delta" in name, name
            assert parameter.grad is not None, name
        else:
            assert parameter.grad is None, name


def base_name(name: str) -> str:
    """A PEFT parameter's name in the plain model."""
    name = name.removeprefix("lm.base_model.model.")
    return name.replace(".token_adapter.base_layer", "").replace(".base_layer", "")


def anneal_and_merge(root, stage1_final, output_dir, *overrides):
    """Stage 2 from ``stage1_final``: checks that training leaves every frozen weight
    bit-identical to stage 1's and that the merged model computes what the adapted one did.
    Returns (stage-1 model, merged model)."""
    anneal = config(root, "anneal", output_dir, *overrides)
    trainer = build_trainer(anneal, base=str(stage1_final))
    trainer.train()
    before = AutoModelForCausalLM.from_pretrained(stage1_final)
    weights = dict(before.named_parameters())
    frozen = {
        base_name(name): parameter
        for name, parameter in trainer.model.named_parameters()
        if not parameter.requires_grad
    }
    assert frozen.keys() == weights.keys()
    for name, parameter in frozen.items():
        assert torch.equal(parameter, weights[name]), name

    batch = seqrec_batch(trainer)
    trainer.model.eval()
    with torch.no_grad():
        adapted = trainer.model.lm(input_ids=batch["input_ids"]).logits
    final = save_final(trainer, anneal)
    assert not (final / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(final)
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=batch["input_ids"]).logits, adapted, atol=1e-5)
    assert not torch.equal(merged.lm_head.weight, before.lm_head.weight)
    return before, merged


def test_anneal_keeps_stage1_weights_then_merges(root, stage1):
    anneal_and_merge(root, stage1 / "final", "anneal")
    records = metrics(root / "anneal")
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    assert all(r["gct_sem"] is None for r in records)


def test_tied_embeddings_stay_tied(root, tmp_path):
    """SmolLM2 ties its LM head to the input embeddings: one trainable-token delta serves
    both, and every saved model is still tied."""
    folder = tmp_path / "tied-llama"
    model_config = AutoConfig.from_pretrained(resolve("tiny-llama"), tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(model_config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve("tiny-llama")).save_pretrained(folder)
    final = run(config(root, "train", "tied1", f"model={folder}", "max_steps=2"))
    _, merged = anneal_and_merge(root, final, "tied2", "max_steps=2")
    for model in (AutoModelForCausalLM.from_pretrained(final), merged):
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    # a tied model's checkpoint lacks lm_head.weight: loading the best checkpoint at the end
    # (and resuming) must accept that (it raised AttributeError in Trainer's load warnings)
    best = run(config(root, "train", "tied3", f"model={folder}", "max_steps=2",
                      "eval_strategy=steps", "eval_steps=1", "save_steps=1",
                      "load_best_model_at_end=true", "valid_users=2"))  # fmt: skip
    settings = json.loads((best / "run_settings.json").read_text())
    assert settings["best_checkpoint"] is not None
    tied = AutoModelForCausalLM.from_pretrained(best)
    assert tied.lm_head.weight.data_ptr() == tied.model.embed_tokens.weight.data_ptr()


class Crash(TrainerCallback):
    """Fails the run once step ``step`` is logged."""

    def __init__(self, step: int):
        self.step = step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("lora", [False, True])
def test_resume_continues_at_the_same_step(root, stage1, lora):
    overrides = ["lora={r: 8}"] if lora else []
    reference = root / "lora-reference" if lora else stage1
    if lora:
        run(config(root, "train", reference.name, *overrides))
    name = f"interrupted-{'lora' if lora else 'full'}"
    interrupted = config(root, "train", name, *overrides)
    trainer = build_trainer(interrupted)
    trainer.add_callback(Crash(3))  # after checkpoint-2 and the metrics of step 3
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert [r["step"] for r in metrics(root / name)] == [1, 2, 3]

    run(interrupted, resume=True)
    assert losses(root / name) == losses(reference)  # same steps, batches, negatives
    for file in ("final/model.safetensors", PROJECTORS):
        resumed, expected = (load_file(folder / file) for folder in (root / name, reference))
        assert all(torch.equal(resumed[key], expected[key]) for key in expected), file


def test_cli_anneal_without_merging_saves_the_adapter(root, stage1):
    out = root / "adapter"
    cli(
        "anneal", "--config", CONFIG, "--from", stage1, "--index", root / "index",
        "--output-dir", out, "--max-steps", "1", "--set", "merge_lora=false",
    )  # fmt: skip
    assert (out / "final" / "adapter_config.json").is_file()
    assert not (out / PROJECTORS).exists()


def test_cli_reports_config_errors(root, tmp_path):
    app = typer.Typer()
    app.command("train")(train_command)
    app.command("anneal")(anneal_command)
    result = CliRunner().invoke(app, ["train", "--config", str(CONFIG), "--set", "tasks=[x]"])
    assert result.exit_code == 2 and "unknown task 'x'" in result.output
    result = CliRunner().invoke(
        app, ["anneal", "--config", str(CONFIG), "--from", str(tmp_path), "--output-dir", "o"]
    )
    assert result.exit_code == 2 and "no final/config.json" in result.output


def test_anneal_falls_back_to_the_stage1_model_when_validation_only_falls(
    root, stage1, monkeypatch
):
    """Annealing validated at its start and at the end, worse at the end: final/ is the
    stage-1 model itself (checkpoint-0 of the LoRA run, merged), not the annealed one."""
    script_validation(monkeypatch, [0.5, 0.2, 0.1], n_users=2)
    anneal = config(root, "anneal", "anneal-fallback", "eval_strategy=steps", "eval_steps=2",
                    "save_steps=2", "eval_on_start=true", "load_best_model_at_end=true",
                    "valid_users=2")  # fmt: skip
    final = run(anneal, base=str(stage1 / "final"))
    settings = json.loads((final / "run_settings.json").read_text())
    assert settings["best_checkpoint"].endswith("checkpoint-0")
    before = load_file(stage1 / "final" / "model.safetensors")
    after = load_file(final / "model.safetensors")
    assert all(torch.allclose(after[key], before[key], atol=1e-6) for key in before)


def test_a_run_resumed_from_its_start_checkpoint_still_ends_on_the_best_start(
    root, stage1, monkeypatch
):
    """The fallback above when the run is interrupted after checkpoint-0 and resumed from
    it: the saved state points at checkpoint-0, so final/ is still the stage-1 model (the
    state saved before the pointer was set made final/ the last, worse model)."""
    import eager_llm.training.stages as stages

    script_validation(monkeypatch, [0.5, 0.2, 0.1], n_users=2)
    anneal = config(root, "anneal", "anneal-resumed", "eval_strategy=steps", "eval_steps=2",
                    "save_steps=2", "eval_on_start=true", "load_best_model_at_end=true",
                    "valid_users=2")  # fmt: skip
    trainer = stages.build_trainer(anneal, str(stage1 / "final"))
    trainer.add_callback(Crash(1))  # after the start's validation and checkpoint-0
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    start = json.loads(
        (root / "anneal-resumed" / "checkpoint-0" / "trainer_state.json").read_text()
    )
    assert start["best_model_checkpoint"].endswith("checkpoint-0")
    final = run(anneal, base=str(stage1 / "final"), resume=True)
    settings = json.loads((final / "run_settings.json").read_text())
    assert settings["best_checkpoint"].endswith("checkpoint-0")
    before = load_file(stage1 / "final" / "model.safetensors")
    after = load_file(final / "model.safetensors")
    assert all(torch.allclose(after[key], before[key], atol=1e-6) for key in before)


def test_validation_baselines_include_co_occurrence_on_the_same_users(tmp_path):
    """Item 2 follows item 1 in training and never the fillers 10-21, which are more popular:
    the co-occurrence line finds each target 2 (behind the seen item 1, tied with it and
    more popular; first once seen items are removed), most-popular does not."""
    import math

    import numpy as np

    from eager_llm.data import Example
    from eager_llm.training.validation import baseline_metrics

    fillers = np.repeat(np.arange(10, 22), 3)
    train = [np.array([0, 1]), np.array([3, 0, 1]), np.array([1, 2, 1, 2]), fillers]
    examples = [Example(0, (0, 1), 2), Example(1, (3, 0, 1), 2)]
    kept = baseline_metrics(examples, train, n_items=30, sasrec_folder=tmp_path)
    assert set(kept) == {"most popular", "co-occurrence"}  # no SASRec in an empty folder
    assert kept["most popular"]["recall@10"] == 0.0
    assert kept["co-occurrence"]["recall@10"] == 1.0
    assert math.isclose(kept["co-occurrence"]["ndcg@10"], 1 / math.log2(3))
    removed = baseline_metrics(examples, train, 30, tmp_path, seen="remove")
    assert removed["co-occurrence"]["ndcg@10"] == 1.0


def test_valid_seed_fixes_the_validation_users_across_training_seeds(root, tmp_path):
    """Without ``valid_seed`` a run of another seed validates on other users; with it, on
    the same ones (what comparing training seeds on one validation sample needs)."""
    from eager_llm.data import leave_one_out
    from eager_llm.training import load_index, load_indexed_dataset
    from eager_llm.training.stages import validation_parts

    (tmp_path / "run").mkdir()  # where the baselines on the same users are written

    def users(*overrides):
        settings = config(
            root, "train", tmp_path / "run", "valid_users=5", "eval_on_start=true", *overrides
        )
        files = load_index(settings.index)
        split = leave_one_out(load_indexed_dataset(files)[0], max_history=settings.max_history)
        return [e.user for e in validation_parts(settings, files, split)[1]]

    assert users("seed=0") != users("seed=1")
    assert users("seed=1", "valid_seed=0") == users("seed=0")
