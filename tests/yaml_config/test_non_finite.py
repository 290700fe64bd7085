"""A NaN or infinity in any number key of either tool's config (in the file or a
``--set``), also one without a range of its own, is one error line naming the key, exit 2,
nothing written (issue 31)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from eager_llm.cli import app as eager_app
from observe_r1.cli import app as observe_app
from tests.eager_llm.training.toy import CONFIG as EAGER_CONFIG
from tests.observe_r1.training.test_trainer import TINY as OBSERVE_CONFIG

CASES = [  # (app, config, key, YAML value): keys without a range of their own
    (observe_app, OBSERVE_CONFIG, "repetition_penalty", ".nan"),
    (observe_app, OBSERVE_CONFIG, "entropy_coef", ".inf"),
    (eager_app, EAGER_CONFIG, "label_smoothing_factor", "-.inf"),
]


@pytest.mark.parametrize(("app", "config", "key", "value"), CASES)
def test_a_non_finite_config_value_is_an_error_naming_the_key(tmp_path, app, config, key, value):
    out = tmp_path / "run"
    args = ["train", "--config", str(config), "--output-dir", str(out), "--set", f"{key}={value}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: --set {key}={value}: ") and "finite" in line, line
    assert not out.exists()


def test_a_non_finite_value_in_the_file_is_named_too(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(OBSERVE_CONFIG.read_text() + "repetition_penalty: .inf\n")
    result = CliRunner().invoke(observe_app, ["train", "--config", str(config)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {config}: 'repetition_penalty' must be a finite")
