"""The ``train`` (stage 1), ``anneal`` (stage 2), ``rl`` (stage 3) and ``repeat`` (train
and anneal, then eval, per seed) verbs of ``eager-llm``.

Register with ``app.command("train")(train_command)``,
``app.command("anneal")(anneal_command)``, ``app.command("rl")(rl_command)`` and
``app.command("repeat")(repeat_command)``.
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
    from eager_llm.rl import load_rl_config, run_rl
    from eager_llm.training import ConfigError, load_config, run, stage1_final
    from model_zoo.cli_errors import expected_errors
    from model_zoo.run_folder import RunFolderError
    from model_zoo.training_guards import NonFiniteError
    from yaml_config import blame_override

    flags = {  # config key -> the option that set it, to blame
        key: f"--{key.replace('_', '-')} {value}"
        for key, value in explicit.items()
        if value is not None
    }
    with expected_errors(ConfigError, RunFolderError, NonFiniteError):
        try:
            if stage == "rl":
                settings = load_rl_config(config, overrides, **explicit)
                base = str(stage1_final(base_dir, "rl", "stage-2 (anneal)"))
                final = run_rl(settings, base=base, resume=resume, overwrite=overwrite)
            else:
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


def rl_command(
    config: Path = typer.Option(..., exists=True, dir_okay=False, help="YAML config file."),
    from_: Path = typer.Option(
        ..., "--from", exists=True, file_okay=False, help="Stage-2 run folder (holds final/)."
    ),
    index: Path = typer.Option(None, help="Index folder (default: the config's index)."),
    output_dir: Path = typer.Option(None, help="Run folder (default: the config's rl.output_dir)."),
    max_steps: int = typer.Option(None, help="Override max_steps."),
    resume: bool = typer.Option(False, help=RESUME_HELP),
    overwrite: bool = typer.Option(False, help=OVERWRITE_HELP),
    set_: list[str] = typer.Option(None, "--set", help="Override any rl key: key=value."),
) -> None:
    """Stage 3 (beyond the paper): GRPO on trie-constrained beams, a LoRA adapter on the
    stage-2 model rewarded for ranking each training example's next item high."""
    _run(
        config,
        "rl",
        set_ or [],
        from_,
        resume,
        overwrite,
        index=str(index) if index else None,
        output_dir=str(output_dir) if output_dir else None,
        max_steps=max_steps,
    )


def repeat_command(
    config: Path = typer.Option(..., exists=True, dir_okay=False, help="YAML config file."),
    seeds: str = typer.Option(..., help="Seeds, one run each, separated by commas: 0,1,2."),
    output_dir: Path = typer.Option(..., help="Folder of the runs (seed-S/) and the summary."),
    anneal: bool = typer.Option(False, help="Also run stage 2 on each seed's stage 1."),
    index: Path = typer.Option(None, help="Index folder (default: the config's index)."),
    max_steps: int = typer.Option(None, help="Override max_steps (both stages)."),
    set_: list[str] = typer.Option(None, "--set", help="Override any config key: key=value."),
    resume: bool = typer.Option(False, help=RESUME_HELP),
    overwrite: bool = typer.Option(False, help=OVERWRITE_HELP),
    split: str = typer.Option("test", help="Split evaluated: test or valid."),
    beams: int = typer.Option(20, help="Beams = items ranked per user."),
    batch_size: int = typer.Option(16, help="Users decoded together."),
    limit_users: int = typer.Option(None, help="Only the first N users of the split."),
    dtype: str = typer.Option("float32", help="float32 or bfloat16 decoding."),
) -> None:
    """Train (--anneal: and anneal) then evaluate one run per seed; writes
    OUTPUT_DIR/seed-S/ and OUTPUT_DIR/seeds.{json,md}: mean and std of each metric."""
    from eager_llm.cli.evaluate import check_decoding
    from eager_llm.repeats import parse_seeds, repeat, summary_table
    from eager_llm.training import ConfigError
    from eager_llm.training.model import DTYPES
    from model_zoo.cli_errors import expected_errors
    from model_zoo.run_folder import RunFolderError
    from model_zoo.training_guards import NonFiniteError
    from yaml_config import blame_override

    try:
        check_decoding(beams, batch_size, limit_users)
        chosen = parse_seeds(seeds)
        if split not in ("test", "valid"):
            raise ValueError(f"--split {split!r}: test or valid")
        if dtype not in DTYPES:
            raise ValueError(f"--dtype {dtype!r}: one of {', '.join(DTYPES)}")
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    given = {"index": str(index) if index else None, "max_steps": max_steps}
    explicit = {key: value for key, value in given.items() if value is not None}
    flags = {key: f"--{key.replace('_', '-')} {value}" for key, value in explicit.items()}
    evaluation = {"split": split, "beams": beams, "batch_size": batch_size,
                  "limit_users": limit_users, "dtype": dtype}  # fmt: skip
    with expected_errors(ConfigError, RunFolderError, NonFiniteError):
        try:
            summary = repeat(
                config,
                chosen,
                output_dir,
                overrides=set_ or [],
                anneal=anneal,
                resume=resume,
                overwrite=overwrite,
                evaluation=evaluation,
                echo=typer.echo,
                **explicit,
            )
        except ConfigError as error:
            raise blame_override(error, set_ or [], flags, source=str(config)) from None
    typer.echo(summary_table(summary))
    typer.echo(f"summary: {output_dir / 'seeds.md'}")


def tiger_command(
    index: Path = typer.Option(..., exists=True, file_okay=False, help="Index folder."),
    output_dir: Path = typer.Option(..., help="Folder for the trained T5 and tiger.json."),
    epochs: int = typer.Option(10, help="Passes over all training examples."),
    layers: int = typer.Option(4, help="Encoder and decoder layers (TIGER: 4)."),
    d_model: int = typer.Option(128, help="Model width (TIGER: 128)."),
    d_ff: int = typer.Option(1024, help="MLP width (TIGER: 1024)."),
    heads: int = typer.Option(6, help="Attention heads of 64 dims (TIGER: 6)."),
    valid_users: int = typer.Option(500, help="Validation users (fixed sample)."),
    patience: int = typer.Option(
        3, help="Stop after this many epochs without a better validation Recall@10."
    ),
    seed: int = typer.Option(0, help="Seed of the weights, the order and the user sample."),
    resume: bool = typer.Option(False, help="Continue from output_dir's last finished epoch."),
    overwrite: bool = typer.Option(False, help="Replace the model an earlier run left."),
) -> None:
    """TIGER baseline: a T5 trained from scratch on the index's codes until validation stops
    improving (best epoch kept; every epoch checkpointed, --resume continues)."""
    from eager_llm.data import leave_one_out
    from eager_llm.tiger import CHECKPOINT, STATE, TigerConfig, train
    from eager_llm.training.index_files import load_indexed_dataset
    from eager_llm.training.preflight import read_index
    from eager_llm.training.validation import sample_users
    from model_zoo.cli_errors import error_line
    from model_zoo.outputs import prepare_outputs
    from yaml_config.limits import MAX_EPOCHS, MAX_ROWS, MAX_SEED, MAX_WIDTH, check_size

    try:
        check_size("--epochs", epochs, MAX_EPOCHS)
        for option, value, low in [("--layers", layers, 1), ("--d-model", d_model, 8),
                                   ("--d-ff", d_ff, 8), ("--heads", heads, 1)]:  # fmt: skip
            check_size(option, value, MAX_WIDTH, low=low)
        check_size("--valid-users", valid_users, MAX_ROWS)
        check_size("--patience", patience, MAX_EPOCHS)
        check_size("--seed", seed, MAX_SEED, low=0)
        products = (STATE, CHECKPOINT, "config.json", "*.safetensors", "item_index.json")
        prepare_outputs(
            output_dir,
            option="--output-dir",
            inputs=[index],
            products=products,
            overwrite=overwrite or resume,
        )
        files = read_index(index)  # errors name the index file
        interactions, _ = load_indexed_dataset(files)
    except (ValueError, FileNotFoundError) as error:
        typer.echo(error_line(str(error)), err=True)
        raise typer.Exit(2) from None
    config = TigerConfig(
        epochs=epochs,
        layers=layers,
        d_model=d_model,
        d_ff=d_ff,
        heads=heads,
        seed=seed,
        patience=patience,
    )
    split = leave_one_out(interactions, max_history=config.max_history)
    users = sample_users(split.valid, valid_users, seed)
    try:
        summary = train(
            split,
            files.item_index,
            files.item_ids,
            config,
            users,
            output_dir,
            progress=lambda line: typer.echo(line),
            resume=resume,
        )
    except ValueError as error:  # a checkpoint of other settings
        typer.echo(error_line(str(error)), err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"best epoch {summary['best_epoch']} of {len(summary['curve'])} "
        f"(stopped by {summary['stopped']}); model: {output_dir}"
    )
