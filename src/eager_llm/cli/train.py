"""The ``train`` (stage 1) and ``anneal`` (stage 2) verbs of ``eager-llm``.

Register with ``app.command("train")(train_command)`` and
``app.command("anneal")(anneal_command)``.
"""

from __future__ import annotations

from pathlib import Path

import typer


def _run(
    config: Path, stage: str, overrides: list[str], base_dir: Path | None, resume: bool, **explicit
) -> None:
    from eager_llm.training import ConfigError, load_config, run, stage1_final

    try:
        settings = load_config(config, stage, overrides, **explicit)
        base = str(stage1_final(base_dir)) if base_dir else None
        final = run(settings, base=base, resume=resume)
    except (ConfigError, FileNotFoundError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"final model: {final}")


def train_command(
    config: Path = typer.Option(..., exists=True, dir_okay=False, help="YAML config file."),
    index: Path = typer.Option(None, help="Index folder (default: the config's index)."),
    output_dir: Path = typer.Option(None, help="Run folder (default: the config's output_dir)."),
    max_steps: int = typer.Option(None, help="Override max_steps."),
    resume: bool = typer.Option(False, help="Continue from the last checkpoint in output_dir."),
    set_: list[str] = typer.Option(None, "--set", help="Override any config key: key=value."),
) -> None:
    """Stage 1: all alignment tasks + GCT; writes checkpoints, metrics, final/ and projectors."""
    _run(
        config,
        "train",
        set_ or [],
        None,
        resume,
        index=str(index) if index else None,
        output_dir=str(output_dir) if output_dir else None,
        max_steps=max_steps,
    )


def anneal_command(
    config: Path = typer.Option(..., exists=True, dir_okay=False, help="YAML config file."),
    from_: Path = typer.Option(
        ..., "--from", exists=True, file_okay=False, help="Stage-1 run folder (holds final/)."
    ),
    index: Path = typer.Option(None, help="Index folder (default: the config's index)."),
    output_dir: Path = typer.Option(
        None, help="Run folder (default: the config's anneal.output_dir)."
    ),
    max_steps: int = typer.Option(None, help="Override max_steps."),
    resume: bool = typer.Option(False, help="Continue from the last checkpoint in output_dir."),
    set_: list[str] = typer.Option(None, "--set", help="Override any anneal key: key=value."),
) -> None:
    """Stage 2: LoRA on the frozen stage-1 model, seqrec only, decaying learning rate."""
    _run(
        config,
        "anneal",
        set_ or [],
        from_,
        resume,
        index=str(index) if index else None,
        output_dir=str(output_dir) if output_dir else None,
        max_steps=max_steps,
    )
