"""ObserveR1Trainer on the tiny VLMs: files, shaped advantages, stock equivalence, errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText
from trl import GRPOTrainer
from typer.testing import CliRunner

from observe_r1.cli import app
from observe_r1.data.rows import RowError
from observe_r1.demo import draw_counting_rows
from observe_r1.rewards import make_format_reward
from observe_r1.training import trainer as trainer_module
from observe_r1.training.config import ConfigError, load_config
from observe_r1.training.shaping import shape_advantages
from observe_r1.training.train import build_trainer, train

TINY = Path(__file__).parents[3] / "configs" / "observe_r1" / "tiny.yaml"


def write_rows(folder: Path, n: int = 6) -> Path:
    """``n`` counting questions with real PNGs (ids ``count-0``...); returns the JSONL path."""
    return draw_counting_rows(folder, n)


def hashed_accuracy(prompts, completions, answer, **kwargs):
    """A deterministic stand-in judge (the random tiny model is never right): about half of
    the completions count as correct, so groups carry signal."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [float(hashlib.sha256(str(t).encode()).digest()[0] % 2) for t in texts]


hashed_accuracy.__name__ = "accuracy"


def config_for(tmp_path, **overrides):
    data = write_rows(tmp_path)
    settings = {"train_file": str(data), "output_dir": str(tmp_path / "run"), **overrides}
    return load_config(TINY, [f"{k}={v}" for k, v in settings.items()])


class Recording:
    """Mixin: remember the advantages every optimisation step was computed with."""

    def _compute_loss(self, model, inputs):
        self.used_advantages = getattr(self, "used_advantages", [])
        self.used_advantages.append(inputs["advantages"].detach().clone())
        return super()._compute_loss(model, inputs)


class RecordingObserveR1(Recording, trainer_module.ObserveR1Trainer):
    pass


class RecordingGRPO(Recording, GRPOTrainer):
    pass


def _trainer(config, trainer_class):
    trainer = build_trainer(config, trainer_class)
    trainer.reward_funcs = [make_format_reward(), hashed_accuracy]
    return trainer


@pytest.mark.parametrize("model", ["tiny-qwen2.5-vl", "tiny-llava"])
def test_training_uses_shaped_advantages_and_writes_the_run(tmp_path, model):
    config = config_for(tmp_path, model=model, bonus_min_length=2)
    trainer = _trainer(config, RecordingObserveR1)
    trainer.train()

    run = Path(config.output_dir)
    rollouts = [json.loads(line) for line in (run / "rollouts.jsonl").read_text().splitlines()]
    assert [r["row_id"] for r in rollouts] == [f"count-{i}" for i in range(4) for _ in range(4)]
    rewards = torch.tensor([sum(r["rewards"].values()) for r in rollouts]).view(-1, 4)
    correct = torch.tensor([r["correct"] for r in rollouts]).view(-1, 4)
    lengths = torch.tensor([r["length"] for r in rollouts]).view(-1, 4)
    expected = shape_advantages(rewards, correct, lengths, bonus_min_length=2, eps=1e-4)
    # TRL shuffles completions inside a generation batch: compare each step as a multiset
    used = torch.stack([step.sort().values for step in trainer.used_advantages])
    expected = expected.view(len(trainer.used_advantages), -1).sort(dim=1).values
    torch.testing.assert_close(used, expected, rtol=1e-5, atol=1e-6)
    logged = torch.tensor([r["advantage"] for r in rollouts]).view_as(expected)
    torch.testing.assert_close(logged.sort(dim=1).values, expected, rtol=1e-5, atol=1e-6)
    assert used.abs().sum() > 0, "groups with mixed correctness must carry signal"
    assert "text" not in rollouts[0]  # rollout_texts is off by default

    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]
    required = {
        "step",
        "reward",
        "reward_format",
        "reward_accuracy",
        "bonus_rate",
        "kl",
        "difficulty_weight_mean",
        "zero_signal_groups",
        "completion_length_mean",
        "frac_reward_zero_std",
        "rollout",
        "loss",
        "step_seconds",
    }
    assert required <= set(metrics[0])
    assert {p.name for p in run.glob("checkpoint-*")} == {"checkpoint-1", "checkpoint-2"}


@pytest.mark.parametrize("scale_rewards", ["group", "none"])  # none: Dr. GRPO's unscaled
def test_with_both_switches_off_advantages_equal_stock_grpo(tmp_path, scale_rewards):
    runs = {}
    switches = {"use_bonus": False, "use_dynamic_weight": False, "scale_rewards": scale_rewards}
    for name, trainer_class in (("stock", RecordingGRPO), ("ours", RecordingObserveR1)):
        (tmp_path / name).mkdir()
        config = config_for(tmp_path / name, max_steps=1, **switches)
        trainer = _trainer(config, trainer_class)
        trainer.train()
        runs[name] = trainer.used_advantages[0].sort().values
    assert runs["stock"].abs().sum() > 0
    torch.testing.assert_close(runs["ours"], runs["stock"], rtol=1e-5, atol=1e-6)


def test_train_writes_a_loadable_final_model_and_plot(tmp_path):
    config = config_for(tmp_path, max_steps=1)
    final = train(config)
    trained = AutoModelForImageTextToText.from_pretrained(final).state_dict()
    resumed = AutoModelForImageTextToText.from_pretrained(Path(config.output_dir) / "checkpoint-1")
    for name, tensor in resumed.state_dict().items():
        torch.testing.assert_close(trained[name], tensor, rtol=0, atol=0)
    assert (final / "processor_config.json").is_file()
    assert "ImageOnly" not in (final / "processor_config.json").read_text()
    assert (Path(config.output_dir) / "reward_curve.png").stat().st_size > 0


def test_fsdp_final_save_gathers_one_full_state_dict():
    from accelerate.utils import FullyShardedDataParallelPlugin
    from torch.distributed.fsdp import FullStateDictConfig, StateDictType

    from observe_r1.training.train import use_full_state_dict

    plugin = FullyShardedDataParallelPlugin(fsdp_version=2, state_dict_type="SHARDED_STATE_DICT")
    use_full_state_dict(plugin)
    assert plugin.state_dict_type == StateDictType.FULL_STATE_DICT
    assert plugin.state_dict_config == FullStateDictConfig(offload_to_cpu=True, rank0_only=True)
    use_full_state_dict(None)  # no FSDP: nothing to do


def test_shuffled_curriculum_changes_the_prompt_order(tmp_path):
    assert config_for(tmp_path, curriculum="shuffled").shuffle_dataset is True
    assert config_for(tmp_path, curriculum="ordered").shuffle_dataset is False


def test_unknown_config_key_is_named(tmp_path):
    result = CliRunner().invoke(app, ["train", "--config", str(TINY), "--set", "bonnus=0.3"])
    assert result.exit_code == 2
    assert "unknown config key 'bonnus'" in result.output
    with pytest.raises(ConfigError, match="curriculum"):
        load_config(TINY, ["curriculum=random"])
    with pytest.raises(ConfigError, match="unknown key 'lora.rank'"):
        load_config(TINY, ["lora={rank: 4}"])


@pytest.mark.slow
def test_lora_run_merges_into_a_plain_final_model(tmp_path):
    final = train(config_for(tmp_path, max_steps=1, lora="{r: 4, alpha: 8}"))
    model = AutoModelForImageTextToText.from_pretrained(final)
    assert not any("lora" in name for name, _ in model.named_parameters())


def test_rows_with_missing_image_or_answer_name_the_line(tmp_path):
    path = write_rows(tmp_path, n=3)
    lines = path.read_text().splitlines()
    lines[1] = json.dumps({"id": "x", "image": "missing.png", "question": "q", "answer": "1"})
    lines.append(json.dumps({"id": "y", "image": "count-0.png", "question": "q"}))
    path.write_text("\n".join(lines) + "\n")
    config = load_config(TINY, [f"train_file={path}", f"output_dir={tmp_path / 'run'}"])
    with pytest.raises(RowError, match=r"train.jsonl:2: field 'image': no such file"):
        build_trainer(config)
    skipping = load_config(
        TINY, [f"train_file={path}", f"output_dir={tmp_path / 'run'}", "skip_invalid=true"]
    )
    from observe_r1.training.train import training_dataset

    dataset, skipped = training_dataset(skipping)
    assert (len(dataset), skipped) == (2, 2)


def test_a_moved_trl_hook_fails_loudly(monkeypatch):
    trainer_module.check_trl_hooks()

    def renamed(self, inputs, prompts, completions, completion_ids):
        return None

    monkeypatch.setattr(GRPOTrainer, "_calculate_rewards", renamed)
    with pytest.raises(RuntimeError, match="_calculate_rewards changed"):
        trainer_module.check_trl_hooks()


def _digest_bit(text, byte: int) -> int:
    return hashlib.sha256(str(text).encode()).digest()[byte] % 2


def hashed_format(prompts, completions, **kwargs):
    """Format rewards that vary inside a group (the random tiny model never formats)."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [0.5 * _digest_bit(t, 1) for t in texts]


hashed_format.__name__ = "format"


def first_row_always_right(prompts, completions, row_id, **kwargs):
    """count-0 is solved by every completion (f(1) = 0: a group with reward variance but no
    shaped signal); the others as ``hashed_accuracy``."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    pairs = zip(row_id, texts, strict=True)
    return [1.0 if r == "count-0" else float(_digest_bit(t, 0)) for r, t in pairs]


first_row_always_right.__name__ = "accuracy"


def test_metrics_have_one_line_per_optimizer_step_and_trl_logs_the_shaped_advantages(tmp_path):
    # rounds of 2 prompts x 4, trained on in 2 optimizer steps: 4 steps, 2 generations
    config = config_for(
        tmp_path, per_device_train_batch_size=4, steps_per_generation=2, max_steps=4
    )
    trainer = build_trainer(config, RecordingObserveR1)
    trainer.reward_funcs = [hashed_format, first_row_always_right]
    trainer.train()

    run = Path(config.output_dir)
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    assert [m["rollout"] for m in metrics] == [1, 1, 2, 2]
    assert all(m["loss"] is not None and m["learning_rate"] is not None for m in metrics)
    assert metrics[0]["reward"] == metrics[1]["reward"]  # the round's, on each of its steps

    rollouts = [json.loads(line) for line in (run / "rollouts.jsonl").read_text().splitlines()]
    assert [r["row_id"] for r in rollouts] == [f"count-{i}" for i in range(4) for _ in range(4)]
    shaped = torch.tensor([r["advantage"] for r in rollouts]).view(2, 8)
    zero_groups = (shaped.view(2, 2, 4) == 0).all(dim=2).float().mean(dim=1).tolist()
    assert zero_groups[0] == 0.5  # count-0: all correct, rewards 1.0 / 1.5, weight f(1) = 0
    # TRL's own frac_reward_zero_std would say 0.0 there (the rewards vary)
    assert [metrics[0]["frac_reward_zero_std"], metrics[2]["frac_reward_zero_std"]] == zero_groups
    torch.testing.assert_close(torch.tensor(list(trainer._logs["advantages"])), shaped[1])


def test_rollout_of_step_counts_rounds_of_micro_steps():
    from observe_r1.training.run_log import rollout_of_step

    # the paper's recipe: 64 micro-steps per round, 4 per optimizer step -> 16 steps a round
    assert [rollout_of_step(s, 64, 1, 4) for s in (1, 16, 17, 32, 33)] == [1, 1, 2, 2, 3]
    # steps_per_generation 2, num_iterations 2, no accumulation: 4 steps a round
    assert [rollout_of_step(s, 2, 2, 1) for s in range(1, 10)] == [1] * 4 + [2] * 4 + [3]


def test_rollout_texts_are_the_completions_the_rewards_judged(tmp_path):
    config = config_for(tmp_path, rollout_texts=True, max_steps=1)
    _trainer(config, trainer_module.ObserveR1Trainer).train()
    lines = (Path(config.output_dir) / "rollouts.jsonl").read_text().splitlines()
    rollouts = [json.loads(line) for line in lines]
    assert rollouts and all(isinstance(r["text"], str) for r in rollouts)
    # the stand-in judge hashes the text: each record's text must be the one it judged
    judged = hashed_accuracy(None, [r["text"] for r in rollouts], None)
    assert judged == [float(r["correct"]) for r in rollouts]
