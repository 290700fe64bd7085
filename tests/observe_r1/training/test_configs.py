"""Every shipped Observe-R1 config loads into ObserveR1Config with the paper's settings."""

from pathlib import Path

import pytest
import yaml

from observe_r1.training.config import ConfigError, load_config

CONFIGS = Path(__file__).parents[3] / "configs" / "observe_r1"


GPU_ONLY = ["bf16=false"]  # TrainingArguments refuses bf16 on a CPU-only machine


@pytest.mark.parametrize("name", ["tiny.yaml", "smol.yaml", "qwen2_5_vl_3b.yaml"])
def test_config_loads(name):
    config = load_config(CONFIGS / name, ["output_dir=/tmp/unused", *GPU_ONLY])
    assert config.curriculum == "ordered" and config.shuffle_dataset is False
    assert config.response_format == "observe"


def test_paper_config_has_the_paper_settings():
    path = CONFIGS / "qwen2_5_vl_3b.yaml"
    assert yaml.safe_load(path.read_text())["bf16"] is True
    config = load_config(path, ["output_dir=/tmp/unused", *GPU_ONLY])
    assert config.model == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert (config.num_generations, config.learning_rate, config.beta) == (8, 1e-6, 0.01)
    assert (config.epsilon, config.temperature) == (0.2, 1.0)
    assert config.use_vllm and config.vllm_mode == "colocate"
    assert (config.bonus, config.bonus_min_length, config.sigma) == (0.2, 100, 1.8)


PAPER_GPUS = 8
PAPER_PROMPTS = 20_000


def test_paper_config_derives_the_papers_rollout_shape_on_8_gpus():
    from trl.trainer.utils import RepeatSampler

    from observe_r1.training.config import rollout_shape

    config = load_config(CONFIGS / "qwen2_5_vl_3b.yaml", ["output_dir=/tmp/unused", *GPU_ONLY])
    shape = rollout_shape(config, num_processes=PAPER_GPUS, num_prompts=PAPER_PROMPTS)
    assert shape.prompts_per_rollout == 128
    assert shape.completions_per_rollout == 128 * 8 == 1024
    assert shape.completions_per_optimizer_step == 64
    assert shape.micro_batch_per_device == 2
    assert shape.optimizer_steps_per_rollout == 1024 // 64 == 16
    assert shape.rollouts_per_epoch == 156  # 20,000 // 128; TRL drops the last 32 prompts
    assert shape.optimizer_steps_per_epoch == 156 * 16
    assert config.num_train_epochs == 1 and config.num_iterations == 1

    # the same count from TRL's own sampler: one generation batch = one rollout
    sampler = RepeatSampler(
        range(PAPER_PROMPTS),
        mini_repeat_count=config.num_generations,
        batch_size=shape.prompts_per_rollout,
        repeat_count=config.num_iterations * config.steps_per_generation,
        shuffle=config.shuffle_dataset,
    )
    indices = list(sampler)
    per_rollout = (
        shape.completions_per_rollout * config.num_iterations * config.steps_per_generation
    )
    assert len(indices) == shape.rollouts_per_epoch * per_rollout
    assert indices[:8] == [0] * 8 and indices[per_rollout] == 128  # in file order, no shuffle

    # rollouts, not half-rollouts, between checkpoints (exact resume needs a round boundary)
    assert config.save_steps % shape.optimizer_steps_per_rollout == 0


def test_paper_config_has_the_papers_generation_and_image_settings():
    config = load_config(CONFIGS / "qwen2_5_vl_3b.yaml", ["output_dir=/tmp/unused", *GPU_ONLY])
    assert config.use_vllm and config.vllm_mode == "colocate" and config.vllm_enable_sleep_mode
    assert config.max_completion_length == 8192
    assert config.vllm_max_model_length == 9216 + 8192  # prompt_max_len + generate_max_len
    assert (config.min_pixels, config.max_pixels) == (4 * 28 * 28, 10000 * 16 * 16)
    assert config.loss_type == "bnpo"  # LMM-R1's token mean per micro-batch (docs/gpus.md)
    assert config.vllm_importance_sampling_correction is False  # public code has none
    assert (config.adam_beta1, config.adam_beta2, config.max_grad_norm) == (0.9, 0.95, 1.0)
    assert config.lr_scheduler_type == "cosine_with_min_lr"
    assert config.lr_scheduler_kwargs == {"min_lr_rate": 0.1}
    assert config.warmup_steps == 0.03
    assert config.gradient_checkpointing and config.bf16 is False  # GPU_ONLY override


def test_rollout_shape_refuses_optimizer_steps_that_straddle_rounds():
    from observe_r1.training.config import rollout_shape

    config = load_config(
        CONFIGS / "tiny.yaml",
        ["output_dir=/tmp/unused", "steps_per_generation=3", "gradient_accumulation_steps=2"],
    )
    with pytest.raises(ConfigError, match="steps_per_generation"):
        rollout_shape(config, num_processes=1, num_prompts=10)


def test_pixel_bounds_are_validated():
    with pytest.raises(ConfigError, match=r"min_pixels \(5000\) exceeds max_pixels \(4000\)"):
        load_config(CONFIGS / "tiny.yaml", ["min_pixels=5000", "max_pixels=4000"])
    with pytest.raises(ConfigError, match="'max_pixels' must be an integer >= 1 and <="):
        load_config(CONFIGS / "tiny.yaml", ["max_pixels=0"])


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("loss_type=grpoo", "loss_type must be one of grpo, bnpo, dr_grpo, dapo"),
        ("scale_rewards=batch", "scale_rewards must be 'group' .* or 'none' \\(Dr. GRPO\\)"),
        ("multi_objective_aggregation=normalize_then_sum", "must be 'sum_then_normalize'"),
    ],
)
def test_loss_and_scaling_settings_are_checked(setting, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "tiny.yaml", ["output_dir=/tmp/unused", setting])


def test_every_trl_loss_type_and_dr_grpo_scaling_load():
    import inspect

    from trl import GRPOTrainer

    from observe_r1.training.config import LOSS_TYPES

    source = inspect.getsource(GRPOTrainer._compute_loss)
    for loss_type in LOSS_TYPES:  # each one a branch of TRL's loss
        assert f'"{loss_type}"' in source
        assert load_config(CONFIGS / "tiny.yaml", [f"loss_type={loss_type}"]).loss_type == loss_type
    config = load_config(CONFIGS / "tiny.yaml", ["loss_type=dr_grpo", "scale_rewards=none"])
    assert config.scale_rewards == "none"
    paper = load_config(CONFIGS / "qwen2_5_vl_3b.yaml", ["output_dir=/tmp/unused", *GPU_ONLY])
    assert (paper.loss_type, paper.scale_rewards) == ("bnpo", "group")
