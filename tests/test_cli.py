"""Both command-line tools: help on every verb, the shared zoo listing, clear errors."""

import pytest
from typer.testing import CliRunner

from eager_llm.cli import app as eager_app
from observe_r1.cli import app as observe_app

runner = CliRunner()


def _verbs(app) -> list[list[str]]:
    verbs = [[c.name or c.callback.__name__] for c in app.registered_commands]
    for group in app.registered_groups:
        verbs += [[group.name, c.name] for c in group.typer_instance.registered_commands]
    return verbs


@pytest.mark.parametrize("app", [observe_app, eager_app], ids=["observe-r1", "eager-llm"])
def test_every_verb_has_help(app):
    assert runner.invoke(app, ["--help"]).exit_code == 0
    for verb in _verbs(app):
        result = runner.invoke(app, [*verb, "--help"])
        assert result.exit_code == 0, (verb, result.output)
        assert "Usage" in result.output


@pytest.mark.parametrize("app", [observe_app, eager_app], ids=["observe-r1", "eager-llm"])
def test_models_lists_the_zoo(app):
    result = runner.invoke(app, ["models"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in ("smollm2-135m-instruct", "dinov2-small", "minilm-l6-v2", "tiny-qwen2.5-vl"):
        assert name in result.output


def test_models_rejects_unknown_build_names():
    result = runner.invoke(observe_app, ["models", "--build", "gpt-7"])
    assert result.exit_code == 2 and "gpt-7" in result.output


def test_data_stats_prints_counts_and_fails_clearly():
    ok = runner.invoke(eager_app, ["data", "stats", "--dataset", "movielens-100k"])
    assert ok.exit_code == 0 and "99287" in ok.output
    bad = runner.invoke(eager_app, ["data", "stats", "--dataset", "/no/such/dataset"])
    assert bad.exit_code == 2 and "/no/such/dataset" in bad.output
