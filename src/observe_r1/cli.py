"""``observe-r1``: GRPO training of multimodal reasoners (Observe-R1)."""

from __future__ import annotations

import typer

from model_zoo.cli import models

app = typer.Typer(
    help="Observe-R1: observe-then-reason RL for multimodal LLMs.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(models)


@app.callback()
def main() -> None:
    """Run a verb; every verb has --help."""
