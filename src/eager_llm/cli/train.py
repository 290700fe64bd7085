"""The ``train`` (stage 1) and ``anneal`` (stage 2) verbs of ``eager-llm``.

Register with ``app.command("train")(train_command)`` and
``app.command("anneal")(anneal_command)``.
"""

from __future__ import annotations

from pathlib import Path

import typer

OVERWRITE_HELP = "Replace the earlier run in output_dir (once the new inputs check out)."
RESUME_HELP = "Continue the run in output_dir from its newest complete checkpoint."


def _run(
    config: Path,
    stage: str,
    overrides: list[str],
    base_dir: Path | None,
    resume: bool,
    overwrite: bool,
    **explicit,
) -> None:
    from eager_llm.training import ConfigError, load_config, run, stage1_final
    from model_zoo.cli_errors import expected_errors
    from model_zoo.run_folder import RunFolderError
    from yaml_config import blame_override

    flags = {  # config key -> the option that set it, to blame
        key: f"--{key.replace('_', '-')} {value}"
        for key, value in explicit.items()
        if value is not None
    }
    with expected_errors(ConfigError, RunFolderError):
        try:
            settings = load_config(config, stage, overrides, **explicit)
            base = str(stage1_final(base_dir)) if base_dir else None
            final = run(settings, base=base, resume=resume, overwrite=overwrite)
        except ConfigError as error:
            raise blame_override(error, overrides, flags, source=str(config)) from None
    typer.echo(f"final model: {final}")


def train_command(
    config: Path = typer.Option(..., exists=True, dir_okay=False, help="YAML config file."),
    index: Path = typer.Option(None, help="Index folder (default: the config's index)."),
    output_dir: Path = typer.Option(None, help="Run folder (default: the config's output_dir)."),
    max_steps: int = typer.Option(None, help="Override max_steps."),
    resume: bool = typer.Option(False, help=RESUME_HELP),
    overwrite: bool = typer.Option(False, help=OVERWRITE_HELP),
    set_: list[str] = typer.Option(None, "--set", help="Override any config key: key=value."),
) -> None:
    """Stage 1: all alignment tasks + GCT; writes checkpoints, metrics, final/ and projectors."""
    _run(
        config,
        "train",
        set_ or [],
        None,
        resume,
        overwrite,
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
    resume: bool = typer.Option(False, help=RESUME_HELP),
    overwrite: bool = typer.Option(False, help=OVERWRITE_HELP),
    set_: list[str] = typer.Option(None, "--set", help="Override any anneal key: key=value."),
) -> None:
    """Stage 2: LoRA on the frozen stage-1 model, seqrec only, decaying learning rate."""
    _run(
        config,
        "anneal",
        set_ or [],
        from_,
        resume,
        overwrite,
        index=str(index) if index else None,
        output_dir=str(output_dir) if output_dir else None,
        max_steps=max_steps,
    )


def tiger_command(
    index: Path = typer.Option(..., exists=True, file_okay=False, help="Index folder."),
    output_dir: Path = typer.Option(..., help="Folder for the trained T5 and tiger.json."),
    epochs: int = typer.Option(10, min=1, help="Passes over all training examples."),
    layers: int = typer.Option(4, min=1, help="Encoder and decoder layers (TIGER: 4)."),
    d_model: int = typer.Option(128, min=8, help="Model width (TIGER: 128)."),
    d_ff: int = typer.Option(1024, min=8, help="MLP width (TIGER: 1024)."),
    heads: int = typer.Option(6, min=1, help="Attention heads of 64 dims (TIGER: 6)."),
    valid_users: int = typer.Option(200, min=1, help="Validation users (fixed sample)."),
    seed: int = typer.Option(0, help="Seed of the weights, the order and the user sample."),
) -> None:
    """TIGER baseline: a T5 trained from scratch on the index's codes (best epoch kept)."""
    from eager_llm.data import leave_one_out
    from eager_llm.tiger import TigerConfig, train
    from eager_llm.training.index_files import load_indexed_dataset
    from eager_llm.training.preflight import read_index
    from eager_llm.training.validation import sample_users

    try:
        files = read_index(index)  # errors name the index file
        interactions, _ = load_indexed_dataset(files)
    except (ValueError, FileNotFoundError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    config = TigerConfig(
        epochs=epochs, layers=layers, d_model=d_model, d_ff=d_ff, heads=heads, seed=seed
    )
    split = leave_one_out(interactions, max_history=config.max_history)
    users = sample_users(split.valid, valid_users, seed)
    summary = train(
        split,
        files.item_index,
        files.item_ids,
        config,
        users,
        output_dir,
        progress=lambda line: typer.echo(line),
    )
    typer.echo(f"best epoch {summary['best_epoch']}; model: {output_dir}")
