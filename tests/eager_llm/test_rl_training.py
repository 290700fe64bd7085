"""Stage 3 (GRPO on constrained beams) end to end on tiny-llama and the toy catalogue:
config, the loss's gradient, learning, the reference policy, resume, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
import typer
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from eager_llm.cli.train import rl_command
from eager_llm.rl import build_rl_trainer, load_rl_config, run_rl
from eager_llm.rl.policy import completion_log_probs
from eager_llm.rl.trainer import ExampleDataset, Rollouts
from eager_llm.tasks import Sample
from eager_llm.training import load_config, run
from tests.eager_llm.training.test_stages import Crash
from tests.eager_llm.training.toy import CONFIG, toy_index

STEPS = 4  # tiny.yaml: max_steps 4, a checkpoint every 2 steps


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("rl")
    toy_index(root)
    return root


@pytest.fixture(scope="module")
def stage2(root):
    """Stages 1 and 2 of tiny.yaml on the toy catalogue; the stage-2 run folder."""
    options = {"index": str(root / "index")}
    stage1 = run(load_config(CONFIG, "train", [], output_dir=str(root / "stage1"), **options))
    anneal = load_config(CONFIG, "anneal", [], output_dir=str(root / "anneal"), **options)
    run(anneal, base=str(stage1))
    return root / "anneal"


def rl_config(root, output_dir, *overrides):
    return load_rl_config(
        CONFIG, list(overrides), index=str(root / "index"), output_dir=str(root / output_dir)
    )


def records(folder):
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "samples_per_second"}
            for line in lines]  # fmt: skip


def sequence_log_probs(trainer, lm, examples, items) -> torch.Tensor:
    """log p(index of ``items[i]`` + EOS | prompt of ``examples[i]``) under ``lm``: (n,)."""
    samples = [Sample(prompt, trainer.indices[item], "seqrec", item)
               for prompt, item in zip(trainer.prompts(examples), items, strict=True)]  # fmt: skip
    batch = trainer.rows(samples)
    labels = batch["labels"]
    with torch.no_grad():
        logps = completion_log_probs(lm, batch["input_ids"], batch["attention_mask"], labels)
    rows = (labels[:, 1:] != -100).nonzero()[:, 0]
    return torch.zeros(len(samples)).index_add_(0, rows, logps)


def test_rl_inherits_the_top_level_and_reads_its_block(root):
    config = rl_config(root, "cfg")
    assert (config.beams, config.beta, config.learning_rate) == (4, 0.04, 1.0e-3)
    assert config.max_length == 128 and config.template == "short"  # the top level's
    assert config.tasks == ["seqrec"] and not config.use_gct
    assert config.lora_settings.r == 8 and config.merge_lora
    # the other stages never see the rl: block
    assert not hasattr(load_config(CONFIG, "train", [], index="i"), "beams")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("beams=1", "'beams' must be an integer >= 2"),
        ("beams=100000", "'beams' must be an integer >= 2 and <= 1000"),
        ("epsilon=0", "'epsilon' must be a number > 0 and <= 1"),
        ("beta=-1", "'beta' must be a number >= 0"),
        ("seen=drop", "seen must be one of keep, remove"),
        ("lora=null", "rl trains a LoRA adapter"),
        ("tasks=[seqrec]", "rl trains seqrec without GCT; remove 'tasks'"),
        ("clip=0.2", "unknown config key 'clip'"),
    ],
)
def test_bad_values_are_one_error_line(root, tmp_path, override, message):
    app = typer.Typer()
    app.command("rl")(rl_command)
    (tmp_path / "stage2" / "final").mkdir(parents=True)  # never read: the config fails first
    args = ["--config", CONFIG, "--from", tmp_path / "stage2", "--index", root / "index",
            "--output-dir", tmp_path / "out", "--set", override]  # fmt: skip
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and message in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_every_reward_weight_zero_is_an_error(root):
    assert rl_config(root, "rank-only", "hit_weight=0").rank_weight == 1.0
    with pytest.raises(ValueError, match="every reward weight is 0"):
        rl_config(root, "zero", "hit_weight=0", "rank_weight=0")


def test_rl_from_a_folder_without_a_model_is_an_error(root, tmp_path):
    app = typer.Typer()
    app.command("rl")(rl_command)
    result = CliRunner().invoke(
        app, ["--config", str(CONFIG), "--from", str(tmp_path), "--index", str(root / "index"),
              "--output-dir", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "no final/config.json; rl starts from a finished stage-2 (anneal) run" in result.output


def test_one_descent_step_raises_positive_advantages_and_lowers_negative_ones(root, stage2):
    trainer = build_rl_trainer(rl_config(root, "grad", "beta=0"), str(stage2 / "final"))
    policy = trainer.model
    examples = trainer.train_dataset.examples[:2]
    items = [examples[0].target, examples[1].target]
    scored = Rollouts(
        beams=[[items[0]], [items[1]]],
        rewards=[torch.tensor([1.0]), torch.tensor([0.0])],
        advantages=[torch.tensor([1.0]), torch.tensor([-1.0])],
        hits=[True, True],
    )
    sequences = trainer.sequences(examples, scored)
    policy.eval()  # no LoRA dropout: the step is the gradient's
    before = sequence_log_probs(trainer, policy.lm, examples, items)
    policy(**sequences)["loss"].backward()
    with torch.no_grad():
        for parameter in policy.parameters():
            if parameter.grad is not None:
                parameter -= 1e-3 * parameter.grad
    after = sequence_log_probs(trainer, policy.lm, examples, items)
    assert after[0] > before[0] and after[1] < before[1]


def test_training_moves_the_rewarded_item_up_the_beams(root, stage2):
    """Eight steps on one training example whose next item the stage-2 model ranks among
    its 4 beams but not first (the toy catalogue has 10 items): the item gains probability
    and rank, and the frozen stage-2 model (the KL's reference, the adapter disabled) is
    untouched."""
    config = rl_config(root, "learn", "max_steps=8", "save_steps=100",
                       "per_device_train_batch_size=1")  # fmt: skip
    trainer = build_rl_trainer(config, str(stage2 / "final"))
    lm = trainer.model.lm
    lm.eval()
    examples = trainer.train_dataset.examples
    beams = trainer.rollouts(lm, examples).beams
    chosen = next(e for e, items in zip(examples, beams, strict=True) if e.target in items[1:])
    rank = beams[examples.index(chosen)].index(chosen.target)
    before = sequence_log_probs(trainer, lm, [chosen], [chosen.target])
    trainer.train_dataset = ExampleDataset([chosen])
    trainer.train()
    lm.eval()
    after = sequence_log_probs(trainer, lm, [chosen], [chosen.target])
    assert after > before + 0.3, (before, after)
    assert trainer.rollouts(lm, [chosen]).beams[0].index(chosen.target) < rank
    stage2_model = AutoModelForCausalLM.from_pretrained(stage2 / "final")
    with lm.disable_adapter():
        reference = sequence_log_probs(trainer, lm, examples, [e.target for e in examples])
    expected = sequence_log_probs(trainer, stage2_model, examples, [e.target for e in examples])
    torch.testing.assert_close(reference, expected)
    logged = records(root / "learn")
    assert [r["step"] for r in logged] == list(range(1, 9))
    assert all(0 <= r["hit_rate"] <= 1 and r["kl"] >= 0 for r in logged)
    assert logged[-1]["kl"] > 0


def test_resume_continues_exactly(root, stage2):
    base = str(stage2 / "final")
    reference = run_rl(rl_config(root, "rl-reference"), base=base)
    interrupted = rl_config(root, "rl-interrupted")
    trainer = build_rl_trainer(interrupted, base)
    trainer.add_callback(Crash(3))  # after checkpoint-2 and the metrics of step 3
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert [r["step"] for r in records(root / "rl-interrupted")] == [1, 2, 3]
    resumed = run_rl(interrupted, base=base, resume=True)
    assert records(root / "rl-interrupted") == records(root / "rl-reference")
    assert [r["step"] for r in records(root / "rl-reference")] == list(range(1, STEPS + 1))
    expected, got = (load_file(folder / "model.safetensors") for folder in (reference, resumed))
    assert all(torch.equal(got[key], expected[key]) for key in expected)
    assert not (resumed / "adapter_config.json").exists()  # merged, as stage 2's final/


@pytest.mark.parametrize(
    "name", ["tiny.yaml", "smol-ml100k.yaml", "smol-ml1m.yaml", "llama-beauty.yaml"]
)
def test_shipped_configs_load_for_rl(name):
    config = load_rl_config(CONFIG.parent / name, ["bf16=false"], output_dir="s3")
    assert config.lora_settings is not None and not config.use_gct and config.beams >= 2


@pytest.mark.slow
def test_two_processes_follow_the_curve_of_one(root, stage2, tmp_path):
    """``accelerate launch`` (DDP, 2 gloo processes x 2 examples) against 1 process x 4:
    the same loss, reward, hit rate, KL and learning rate at every step (no LoRA dropout:
    each process would draw its own masks; 3 steps stay inside the first epoch)."""
    from tests.eager_llm.training.test_distributed_training import one_process, two_processes

    common = ["rl", "--config", CONFIG, "--index", root / "index", "--from", stage2,
              "--set", "lora={r: 8, alpha: 32, dropout: 0.0}", "--max-steps", "3"]  # fmt: skip
    one_process(*common, "--output-dir", tmp_path / "one")
    two_processes(*common, "--output-dir", tmp_path / "two",
                  "--set", "per_device_train_batch_size=2")  # fmt: skip
    one, two = records(tmp_path / "one"), records(tmp_path / "two")
    assert [r["step"] for r in two] == [r["step"] for r in one] == [1, 2, 3]
    for two_record, one_record in zip(two, one, strict=True):
        assert two_record.keys() == one_record.keys()
        for key, value in one_record.items():
            assert two_record[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
