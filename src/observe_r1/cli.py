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


@app.command("eval")
def evaluate(
    model: str = typer.Option(..., help="Zoo name, HF id or folder of a vision-language model."),
    data: Path = typer.Option(..., exists=True, dir_okay=False, help="Rows JSONL to evaluate on."),
    out: Path = typer.Option(None, help="Report folder (default: runs/eval-<data name>)."),
    samples: int = typer.Option(1, help="1: greedy; N > 1: N sampled responses (pass@k)."),
    temperature: float = typer.Option(1.0, help="Sampling temperature when samples > 1."),
    max_new_tokens: int = typer.Option(256),
    batch_size: int = typer.Option(8),
    response_format: str = typer.Option("observe", help="observe | think"),
    limit: int = typer.Option(None, help="Evaluate only the first N rows."),
    skip_invalid: bool = typer.Option(False, help="Skip bad rows and count them."),
) -> None:
    """Accuracy, format rate, response length, per level and family: JSON, markdown, plot."""
    from rich.progress import Progress
    from transformers import AutoModelForImageTextToText

    from model_zoo import resolve
    from model_zoo.processors import load_processor
    from observe_r1.evaluate import generate_responses, score, write_report
    from observe_r1.rows import RowError, read_rows

    try:
        loaded = read_rows(data, skip_invalid=skip_invalid)
    except RowError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    rows = loaded.rows[:limit] if limit else loaded.rows
    folder = resolve(model)
    processor = load_processor(folder)
    vlm = AutoModelForImageTextToText.from_pretrained(folder).eval()
    with Progress() as progress:
        task = progress.add_task("generating", total=len(rows))
        responses = generate_responses(
            vlm,
            processor,
            rows,
            response_format=response_format,
            samples=samples,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            progress=lambda n: progress.advance(task, n),
        )
    metrics = {**score(rows, responses, response_format=response_format), "skipped": loaded.skipped}
    out = out or Path("runs") / f"eval-{data.stem}"
    write_report(metrics, out, f"{model} on {data.name}")
    typer.echo((out / "eval.md").read_text())
    typer.echo(f"report: {out}")


@app.command()
def align(
    data: Path = typer.Option(
        ..., exists=True, dir_okay=False, help="Rows with caption (+ rationale for stage 2)."
    ),
    out: Path = typer.Option(None, help="Asset folder (default: the repo's assets/smolvlm-dino)."),
    work: Path = typer.Option(Path("runs/align"), help="Checkpoints of both stages."),
    projector_steps: int = typer.Option(200, help="Stage 1: projector-only caption steps."),
    format_steps: int = typer.Option(100, help="Stage 2: LoRA format SFT steps (0: skip)."),
    batch_size: int = typer.Option(8),
    resume: bool = typer.Option(False, help="Continue each stage from its last checkpoint."),
) -> None:
    """Align the default VLM: train its projector on captions, then teach the format."""
    from model_zoo.smolvlm import assets_folder
    from observe_r1.align import run_align
    from observe_r1.rows import RowError, read_rows

    try:
        rows = read_rows(data).rows
    except RowError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    needed = ["caption"] + (["rationale"] if format_steps else [])
    for number, row in enumerate(rows, start=1):
        missing = [key for key in needed if not row.get(key)]
        if missing:
            typer.echo(f"error: {data}: row {number}: missing field '{missing[0]}'", err=True)
            raise typer.Exit(2)
    assets = run_align(
        rows,
        out or assets_folder(),
        work,
        projector_steps=projector_steps,
        format_steps=format_steps,
        batch_size=batch_size,
        resume=resume,
    )
    typer.echo(f"assets: {assets} (the zoo's smolvlm-dino now assembles with them)")


if __name__ == "__main__":
    app()
