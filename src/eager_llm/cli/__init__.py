"""``eager-llm``: generative recommendation with an LLM (EAGER-LLM).

The whole command-line front is this package; the library modules sit beside it in
``eager_llm`` and know nothing of typer. This module builds the app; one module per verb
group holds the verbs:

- :mod:`eager_llm.cli.data`: ``data stats``, ``index``;
- :mod:`eager_llm.cli.train`: ``train`` (stage 1), ``anneal`` (stage 2), ``rl`` (stage 3),
  ``repeat`` (train and evaluate per seed), ``tiger`` (the TIGER baseline);
- :mod:`eager_llm.cli.evaluate`: ``eval``, ``recommend``, ``demo``;
- ``models`` is shared with ``observe-r1`` (:mod:`model_zoo.cli`).

Expected failures are one ``error: <where>: <what>`` line and exit status 2; anything else
is reported as a bug in one line, exit status 1 (:mod:`model_zoo.cli_errors`).

``python -m eager_llm.cli VERB ...`` (e.g. under ``accelerate launch``) runs the same app.
"""

from __future__ import annotations

import typer

from eager_llm.cli.baselines import baselines_command
from eager_llm.cli.data import data_app, index_command
from eager_llm.cli.evaluate import demo_command, eval_command, recommend_command
from eager_llm.cli.train import (
    anneal_command,
    repeat_command,
    rl_command,
    tiger_command,
    train_command,
)
from model_zoo.cli import models
from model_zoo.cli_errors import reporting_group

app = typer.Typer(
    help="EAGER-LLM: an LLM that recommends the next item through learned item indices.",
    no_args_is_help=True,
    add_completion=False,
    cls=reporting_group("eager-llm"),
)
app.command()(models)
app.command("train")(train_command)
app.command("anneal")(anneal_command)
app.command("rl")(rl_command)
app.command("repeat")(repeat_command)
app.command("tiger")(tiger_command)
app.command("eval")(eval_command)
app.command("recommend")(recommend_command)
app.command("demo")(demo_command)
app.command("baselines")(baselines_command)
app.command("index")(index_command)
app.add_typer(data_app, name="data")


@app.callback()
def main() -> None:
    """Run a verb; every verb has --help."""


__all__ = ["app"]
