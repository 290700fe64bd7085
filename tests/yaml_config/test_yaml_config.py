"""Shared YAML config reading: YAML 1.2 exponent floats, overrides, errors; both systems use it."""

import pytest

from eager_llm.training import load_config as load_eager_config
from observe_r1.training.config import load_config as load_observe_config
from yaml_config import ConfigError, load_value, parse_override, read_mapping


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e-5", 1e-5),
        ("-2E+3", -2000.0),
        ("1.0e-5", 1e-5),
        ("12", 12),
        ("1_000", 1000),
        ("'1e-5'", "1e-5"),
        ("1e5x", "1e5x"),
        ("e5", "e5"),
        ("true", True),
    ],
)
def test_values_resolve_like_yaml_1_2_numbers(text, expected):
    value = load_value(text)
    assert value == expected and type(value) is type(expected)


def test_the_stock_safe_loader_is_left_alone():
    import yaml

    assert yaml.safe_load("1e-5") == "1e-5"


def test_overrides_and_files(tmp_path):
    assert parse_override(" learning_rate =3e-4") == ("learning_rate", 3e-4)
    assert parse_override("tasks=[seqrec, index2item]") == ("tasks", ["seqrec", "index2item"])
    with pytest.raises(ConfigError, match="is not key=value"):
        parse_override("max_steps")
    with pytest.raises(ConfigError, match="--set tasks=\\[a: "):
        parse_override("tasks=[a")
    assert read_mapping(None) == {} and read_mapping("") == {}
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert read_mapping(empty) == {}
    with pytest.raises(ConfigError, match="missing.yaml: cannot read config"):
        read_mapping(tmp_path / "missing.yaml")


def test_both_systems_read_exponent_learning_rates(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("learning_rate: 1e-5\noutput_dir: out\n")
    assert load_eager_config(path).learning_rate == 1e-5
    assert load_eager_config(path, overrides=["learning_rate=2e-4"]).learning_rate == 2e-4
    observe = load_observe_config(path, ["bf16=false", "beta=4e-2"])  # GRPOConfig: bf16 on
    assert (observe.learning_rate, observe.beta) == (1e-5, 0.04)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("learning_rate: fast\n", "run.yaml: 'learning_rate' must be float, got 'fast'"),
        ("max_steps: 2.5\n", "'max_steps' must be int, got 2.5"),
        ("seed: true\n", "'seed' must be int, got True"),
        ("gct_negatives: '64'\n", "'gct_negatives' must be int, got '64'"),
        ("learning_rat: 1\n", "run.yaml: unknown config key 'learning_rat'"),
        ("lr_scheduler_type: wavy\n", "run.yaml: .*wavy"),
    ],
)
def test_wrong_values_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "run.yaml"
    path.write_text(text + "output_dir: out\n")
    with pytest.raises(ConfigError, match=message):
        load_eager_config(path)


def test_integers_are_numbers_for_float_fields(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("learning_rate: 1\nnum_train_epochs: 2\nprefixes_per_user: 3\n")
    config = load_eager_config(path)
    assert (config.learning_rate, config.num_train_epochs, config.prefixes_per_user) == (1, 2, 3)


def test_a_dotted_override_sets_one_key_of_a_block():
    from tests.eager_llm.training.toy import CONFIG

    config = load_eager_config(CONFIG, "anneal", ["lora.r=4"], output_dir="x")
    assert config.lora == {"r": 4, "alpha": 32, "dropout": 0.05}  # the file's block, r changed
    observe = load_observe_config(None, ["lora.alpha=8", "use_cpu=true", "bf16=false"])
    assert observe.lora == {"alpha": 8} and observe.lora_settings.r == 16
