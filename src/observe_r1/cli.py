"""``observe-r1``: GRPO training of multimodal reasoners (Observe-R1)."""

from __future__ import annotations

from pathlib import Path

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


@app.command()
def train(
    config: Path = typer.Option(..., exists=True, dir_okay=False, help="YAML config file."),
    max_steps: int = typer.Option(None, help="Override max_steps."),
    output_dir: Path = typer.Option(None, help="Run folder (default: the config's output_dir)."),
    resume: bool = typer.Option(False, help="Continue from the last checkpoint in output_dir."),
    set_: list[str] = typer.Option(None, "--set", help="Override any config key: key=value."),
) -> None:
    """GRPO training with Observe-R1 shaping; writes metrics, checkpoints and final/."""
    from observe_r1.config import ConfigError, load_config
    from observe_r1.rows import RowError

    try:
        settings = load_config(
            config,
            set_ or [],
            max_steps=max_steps,
            output_dir=str(output_dir) if output_dir else None,
        )
        from observe_r1.train import train as run_training

        final = run_training(settings, resume=resume)
    except (ConfigError, RowError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"final model: {final}")


if __name__ == "__main__":
    app()
