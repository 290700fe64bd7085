"""Every shipped Observe-R1 config loads into ObserveR1Config with the paper's settings."""

from pathlib import Path

import pytest
import yaml

from observe_r1.config import load_config

CONFIGS = Path(__file__).parents[2] / "configs" / "observe_r1"


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
