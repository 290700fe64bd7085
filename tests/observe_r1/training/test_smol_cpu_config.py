"""configs/observe_r1/smol-cpu.yaml: the numbers its comments derive, checked."""

from __future__ import annotations

from pathlib import Path

import torch

from model_zoo.hardware import cpu_has_native_bf16
from observe_r1.training.config import load_config, rollout_shape
from observe_r1.training.shaping import bonus_mask, difficulty_weight

CONFIGS = Path(__file__).parents[3] / "configs" / "observe_r1"
UNUSED = ["output_dir=/tmp/unused"]

# The paper's constraint and its responses' mean length (NeuraLadder complexity 155-248
# tokens from difficulty 0 to 1, ~200 on average: /work/shared/papers/observe-r1.md §1, §8)
PAPER_MEAN_RESPONSE_TOKENS = 200
# The default model's responses: 53 tokens on average on the starter levels (starter probe,
# 160 sampled responses), 53-77 (means 62.75 and 63.5 in two smol.yaml steps) on levels
# 1-5; the ladder runs into those levels, so their mean, rounded up to 64, is the reference
MODEL_MEAN_RESPONSE_TOKENS = 64
DEGENERATE_TOKENS = 22  # "<observe>2</observe><think>2</think><answer>2</answer>" + EOS
SHORTEST_REAL_CORRECT_TOKENS = 34  # the starter probe's shortest correct response


def cpu_config(*overrides):
    return load_config(CONFIGS / "smol-cpu.yaml", [*UNUSED, *overrides])


def test_groups_of_the_papers_size_one_prompt_per_step_as_many_completions_as_smol():
    config, smol = cpu_config(), load_config(CONFIGS / "smol.yaml", UNUSED)
    paper = load_config(CONFIGS / "qwen2_5_vl_3b.yaml", [*UNUSED, "bf16=false"])
    assert config.num_generations == paper.num_generations == 8
    shape = rollout_shape(config, num_processes=1, num_prompts=200)
    assert shape.prompts_per_rollout == 1 and shape.completions_per_rollout == 8
    assert shape.optimizer_steps_per_rollout == 1 and shape.optimizer_steps_per_epoch == 200
    smol_shape = rollout_shape(smol, num_processes=1, num_prompts=200)
    assert shape.completions_per_optimizer_step == smol_shape.completions_per_optimizer_step


def test_bonus_constraint_is_the_papers_ratio_scaled_to_the_model():
    config = cpu_config()
    paper = load_config(CONFIGS / "qwen2_5_vl_3b.yaml", [*UNUSED, "bf16=false"])
    ratio = paper.bonus_min_length / PAPER_MEAN_RESPONSE_TOKENS
    assert ratio == 0.5
    assert config.bonus_min_length == round(ratio * MODEL_MEAN_RESPONSE_TOKENS) == 32
    assert DEGENERATE_TOKENS < config.bonus_min_length < SHORTEST_REAL_CORRECT_TOKENS
    assert config.bonus_min_length < config.max_completion_length
    assert (config.use_bonus, config.bonus, config.use_dynamic_weight) == (True, 0.2, True)


def test_bonus_fires_on_the_models_lengths_and_not_on_degenerate_ones():
    config = cpu_config()
    correct = torch.tensor([[False, True, True, False, False, False, False, False]] * 2)
    real = torch.tensor([60, 43, 49, 52, 70, 55, 48, 61])  # lengths as in the probe
    short = real.clone()
    short[1] = DEGENERATE_TOKENS
    mask = bonus_mask(correct, torch.stack([real, short]), config.bonus_min_length)
    assert mask[0].tolist() == [False, True, False, False, False, False, False, False]
    assert not mask[1].any()  # the shortest correct one is degenerate: no bonus
    paper = bonus_mask(correct, torch.stack([real, short]), 100)
    assert not paper.any()  # the paper's 100 never fires on this model


def test_a_group_of_8_weighs_every_mixed_outcome():
    config = cpu_config()
    p = torch.arange(config.num_generations + 1) / config.num_generations
    weights = difficulty_weight(p, config.sigma)
    assert weights[0] == weights[-1] == 0 and bool((weights[1:-1] > 0).all())
    assert (
        len({round(w, 6) for w in weights.tolist()}) == 5
    )  # 0, 0.79, 1.35, 1.69, 1.8: 9 outcomes, symmetric
    # all-wrong groups (weight 0) at p = 0.1 per sample: 66 % of groups of 4, 43 % of 8
    assert round(0.9**4, 2) == 0.66 and round(0.9**8, 2) == 0.43


def test_speed_settings_no_reference_model_no_recompute_bf16_where_native():
    config = cpu_config()
    assert config.beta == 0.0  # TRL loads no reference model
    assert config.gradient_checkpointing is False
    assert config.bf16 is cpu_has_native_bf16() and config.use_cpu is True  # see cpu_bf16
    assert config.max_completion_length == 96 and config.temperature == 1.0
    assert config.curriculum == "ordered" and config.shuffle_dataset is False
    assert config.response_format == "observe"
    restored = cpu_config("beta=0.01")
    assert restored.beta == 0.01
