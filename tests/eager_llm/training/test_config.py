"""YAML -> stage configs: unknown keys, overrides, the anneal block's rules; shipped configs."""

from pathlib import Path

import pytest

from eager_llm.tasks import TASKS
from eager_llm.training import ConfigError, load_config

CONFIGS = Path(__file__).parents[3] / "configs" / "eager_llm"


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_stage1_values_and_overrides(tmp_path):
    path = write(tmp_path, "model: tiny-llama\nlearning_rate: 0.01\noutput_dir: out/s1\n")
    config = load_config(path, "train", ["max_steps=3", "tasks=[seqrec]"], index="idx")
    assert (config.learning_rate, config.max_steps, config.index) == (0.01, 3, "idx")
    assert config.tasks == ["seqrec"] and config.use_gct and config.lora is None
    assert config.remove_unused_columns is False
    assert load_config(path).tasks == list(TASKS)


def test_anneal_inherits_then_applies_defaults_and_its_block(tmp_path):
    path = write(
        tmp_path,
        "learning_rate: 0.01\nnum_train_epochs: 3\nlora: {r: 64}\nseed: 5\noutput_dir: s1\n"
        "tasks: [seqrec, item2index]\nanneal: {learning_rate: 0.002, output_dir: s2}\n",
    )
    config = load_config(path, "anneal")
    assert config.seed == 5 and config.learning_rate == 0.002 and config.output_dir == "s2"
    assert config.num_train_epochs == 1 and config.lr_scheduler_type == "cosine"
    assert config.lora_settings.r == 8 and config.lora_settings.alpha == 32
    assert config.lora_settings.dropout == 0.05
    assert config.tasks == ["seqrec"] and not config.use_gct
    assert load_config(path, "anneal", output_dir="elsewhere").output_dir == "elsewhere"


@pytest.mark.parametrize(
    ("text", "overrides", "stage", "message"),
    [
        ("learning_rat: 1\n", [], "train", "unknown config key 'learning_rat'"),
        ("anneal: {lora_r: 8}\n", [], "train", "unknown config key 'lora_r'"),
        ("lora: {rank: 8}\n", [], "train", "unknown key 'lora.rank'"),
        ("tasks: [search]\n", [], "train", "unknown task 'search'"),
        ("template: chat\n", [], "train", "template must be one of short, alpaca"),
        ("seqrec_labels: all\n", [], "train", "seqrec_labels must be one of last, every"),
        ("valid_seen: drop\n", [], "train", "valid_seen must be one of keep, remove"),
        ("", ["valid_beam_scores=full"], "train", "valid_beam_scores must be one of vocabulary"),
        ("x\n", [], "train", "must be a mapping"),
        ("", ["max_steps"], "train", "is not key=value"),
        ("anneal: {tasks: [seqrec], output_dir: o}\n", [], "anneal", "remove 'tasks'"),
        ("anneal: {output_dir: o}\n", ["gct_semantic_weight=1"], "anneal", "remove 'gct_sem"),
        ("output_dir: s1\n", [], "anneal", "set anneal.output_dir or pass --output-dir"),
    ],
)
def test_errors_name_the_key(tmp_path, text, overrides, stage, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), stage, overrides)


@pytest.mark.parametrize(
    "name", ["tiny.yaml", "smol-ml100k.yaml", "smol-ml1m.yaml", "llama-beauty.yaml"]
)
def test_shipped_configs_load_for_both_stages(name):
    cpu = ["bf16=false"]  # bf16 needs a GPU to validate
    stage1 = load_config(CONFIGS / name, "train", cpu, output_dir="s1")
    anneal = load_config(CONFIGS / name, "anneal", cpu, output_dir="s2")
    assert stage1.use_gct and not anneal.use_gct
    assert anneal.lora_settings is not None


def test_paper_settings():
    path = CONFIGS / "llama-beauty.yaml"
    assert "\nbf16: true\n" in path.read_text()
    stage1 = load_config(path, "train", ["bf16=false"])
    batch = stage1.per_device_train_batch_size * stage1.gradient_accumulation_steps * 8
    assert (stage1.learning_rate, stage1.num_train_epochs, batch) == (5e-5, 3, 128)
    assert stage1.lr_scheduler_type == "cosine" and stage1.lora is None
    assert stage1.template == "alpaca" and stage1.gct_negatives == 2048
    anneal = load_config(path, "anneal", ["bf16=false"])
    lora = anneal.lora_settings
    assert (lora.r, lora.alpha, lora.dropout, anneal.num_train_epochs) == (8, 32, 0.05, 1)
    assert anneal.learning_rate == 5e-5 and anneal.lr_scheduler_type == "cosine"


def test_model_selection_validates_on_at_least_500_users():
    assert load_config(CONFIGS / "smol-ml100k.yaml", "train", ["bf16=false"]).valid_users >= 500
    assert load_config(CONFIGS / "tiny.yaml", "train").valid_users >= 500  # the default
