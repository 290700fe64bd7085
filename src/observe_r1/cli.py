"""``observe-r1``: GRPO training of multimodal reasoners (Observe-R1).

One error path: every expected failure (a bad row, file, option value, model name or output
path) raises `observe_r1.data.rows.InputError` (or the config's `ConfigError`, a run folder's
`RunFolderError`, a checkpoint's `ResumeError`), checked before any model is loaded or file
written, and `_clean_errors` prints it as one line ``error: <where>: <what>`` on stderr with
exit status 2. Anything else is a bug: one line saying so and exit status 1
(:mod:`model_zoo.cli_errors`; ``OBSERVE_EAGER_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from model_zoo.cli import models
from model_zoo.cli_errors import expected_errors, reporting_group
from yaml_config.limits import (
    MAX_BATCH,
    MAX_ROWS,
    MAX_SAMPLES,
    MAX_SEED,
    MAX_STEPS,
    MAX_TEMPERATURE,
    MAX_TOKENS,
    SizeError,
    check_size,
)

app = typer.Typer(
    help="Observe-R1: observe-then-reason RL for multimodal LLMs.",
    no_args_is_help=True,
    add_completion=False,
    cls=reporting_group("observe-r1"),
)
app.command()(models)
OVERWRITE_HELP = "Replace the outputs an earlier run left in the output folder."
PRECISION_HELP = (
    "fp32 | bf16 (fp32 weights, bf16 autocast) | auto: bf16 on a GPU or a CPU with native "
    "bf16 units, fp32 elsewhere. Recorded with the results."
)
DEVICE_HELP = "auto (cuda when there is a GPU) | cpu | cuda: where the model answers."


@app.callback()
def main() -> None:
    """Run a verb; every verb has --help."""


@contextmanager
def _clean_errors(*kinds: type[Exception]) -> Iterator[None]:
    """Turn an `InputError`, a size over its cap, an output refused (or one of `kinds`)
    into ``error: <message>``, an `OSError` met during the work (disk full, permissions)
    into ``error: <file>: <reason>``; exit 2."""
    from model_zoo.outputs import OutputError
    from observe_r1.data.rows import InputError

    with expected_errors(InputError, SizeError, OutputError, *kinds):
        yield


def _device(requested: str) -> str:
    """``--device`` resolved: ``cpu`` or ``cuda`` (``auto``: cuda when there is one)."""
    import torch

    from model_zoo.hardware import resolve_device
    from observe_r1.data.rows import InputError

    try:
        return resolve_device(requested, torch.cuda.is_available())
    except ValueError as error:
        raise InputError(f"--device: {error}") from None


def _precision(requested: str, device: str = "cpu") -> str:
    """``--precision`` resolved for a run on ``device`` (``auto``: bf16 where it pays)."""
    from model_zoo.hardware import resolve_precision
    from observe_r1.data.rows import InputError

    try:
        return resolve_precision(requested, device)
    except ValueError as error:
        raise InputError(f"--precision: {error}") from None


def _sampling(temperature: float, seed: int) -> None:
    _positive("--temperature", temperature)
    check_size("--temperature", temperature, MAX_TEMPERATURE, low=0)
    check_size("--seed", seed, MAX_SEED, low=0)


def _positive(option: str, value: float) -> None:
    from observe_r1.data.rows import InputError

    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{option}: must be a positive number, got {value}")


@app.command()
def train(
    config: Path = typer.Option(..., exists=True, dir_okay=False, help="YAML config file."),
    max_steps: int = typer.Option(None, help="Override max_steps."),
    output_dir: Path = typer.Option(None, help="Run folder (default: the config's output_dir)."),
    resume: bool = typer.Option(
        False, help="Continue the run in output_dir from its newest complete checkpoint."
    ),
    overwrite: bool = typer.Option(
        False, help="Replace the earlier run in output_dir (once the new inputs check out)."
    ),
    set_: list[str] = typer.Option(None, "--set", help="Override any config key: key=value."),
) -> None:
    """GRPO training with Observe-R1 shaping; writes metrics, checkpoints and final/."""
    from model_zoo.run_folder import RunFolderError
    from model_zoo.training_guards import NonFiniteError
    from observe_r1.data.rows import InputError, check_writable
    from observe_r1.evaluation.evaluate import check_model
    from observe_r1.training.config import ConfigError, load_config
    from observe_r1.training.trainer import ResumeError
    from yaml_config import blame_override

    given = {}  # config key -> the option that set it, to blame
    if max_steps is not None:
        given["max_steps"] = f"--max-steps {max_steps}"
    if output_dir is not None:
        given["output_dir"] = f"--output-dir {output_dir}"
    with _clean_errors(ConfigError, RunFolderError, ResumeError, NonFiniteError):
        try:
            settings = load_config(
                config,
                set_ or [],
                max_steps=max_steps,
                output_dir=str(output_dir) if output_dir else None,
            )
            try:
                check_model(settings.model)
            except InputError as error:  # "--model NAME: why"; here the name is the config's
                detail = f"'model' {str(error).removeprefix('--model ')}"
                raise ConfigError(f"{config}: {detail}", key="model", detail=detail) from None
            where = "--output-dir" if output_dir else f"{config}: output_dir"
            check_writable(settings.output_dir, where, folder=True)
            from observe_r1.training.train import train as run_training

            final = run_training(settings, resume=resume, overwrite=overwrite)
        except ConfigError as error:
            raise blame_override(error, set_ or [], given, source=str(config)) from None
    typer.echo(f"final model: {final}")


@app.command("eval")
def evaluate(
    model: str = typer.Option(..., help="Zoo name, HF id or folder of a vision-language model."),
    data: Path = typer.Option(..., exists=True, dir_okay=False, help="Rows JSONL to evaluate on."),
    out: Path = typer.Option(None, help="Report folder (default: runs/eval-<data name>)."),
    samples: int = typer.Option(1, help="1: greedy; N > 1: N sampled responses (pass@k)."),
    temperature: float = typer.Option(1.0, help="Sampling temperature when samples > 1."),
    max_new_tokens: int = typer.Option(256),
    batch_size: int = typer.Option(64, help="Rows per generation call (cut by prompt length)."),
    response_format: str = typer.Option("observe", help="observe | think"),
    limit: int = typer.Option(None, help="Evaluate only the first N rows."),
    skip_invalid: bool = typer.Option(False, help="Skip bad rows and count them."),
    seed: int = typer.Option(0, help="Sampling seed (samples > 1); each batch seeded apart."),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    image_ablation: str = typer.Option(
        None,
        help="Also answer the rows with blank and/or swapped images (blank,swap; the swap "
        "partners drawn with --seed) and report the image-grounded accuracy real - swap.",
    ),
    overwrite: bool = typer.Option(False, help=OVERWRITE_HELP),
) -> None:
    """Accuracy beside the rows' prior accuracy, format rate, response length, per level and
    family: JSON, markdown, plot.

    Resumable: answered batches go to ``<out>/predictions.partial.jsonl``; rerunning the
    same command after a stop answers only the rest."""
    from rich.progress import Progress

    from model_zoo.cache import file_sha256
    from model_zoo.outputs import prepare_outputs, remove_outputs
    from observe_r1.data.prompts import TAGS
    from observe_r1.data.rows import InputError, check_writable, read_rows
    from observe_r1.evaluation import image_ablation as ablation
    from observe_r1.evaluation.evaluate import (
        REPORT_FILES,
        answer_conditions,
        check_model,
        metrics_from_records,
        write_report,
    )
    from observe_r1.evaluation.prior import prior_accuracy
    from observe_r1.evaluation.resume import PARTIAL_FILE, PartialResponses

    out = out or Path("runs") / f"eval-{data.stem}"
    with _clean_errors():
        check_size("--samples", samples, MAX_SAMPLES)
        check_size("--max-new-tokens", max_new_tokens, MAX_TOKENS)
        check_size("--batch-size", batch_size, MAX_BATCH)
        check_size("--limit", limit, MAX_ROWS)
        _sampling(temperature, seed)
        device = _device(device)
        precision = _precision(precision, device)
        if response_format not in TAGS:
            formats = " or ".join(TAGS)
            raise InputError(f"--response-format: {response_format!r} is not {formats}")
        conditions = ablation.parse_conditions(image_ablation)
        earlier = prepare_outputs(  # beside the model (a run folder's final/) is fine
            out, option="--out", inputs=[data], products=REPORT_FILES, overwrite=overwrite
        )
        for name in (*REPORT_FILES, PARTIAL_FILE, ablation.BLANK_FOLDER):
            check_writable(out / name, f"--out's {name}", folder=name == ablation.BLANK_FOLDER)
        check_model(model)
        loaded = read_rows(data, skip_invalid=skip_invalid)
        if loaded.skipped:
            more = f" (and {loaded.skipped - 1} more)" if loaded.skipped > 1 else ""
            typer.echo(
                f"skipped {loaded.skipped} invalid rows: {loaded.reasons[0]}{more}", err=True
            )
        rows = loaded.rows[:limit] if limit else loaded.rows
        model_path = Path(model)
        settings = {
            "model": str(model_path.resolve()) if model_path.exists() else model,
            "data_sha256": file_sha256(data),
            "rows": len(rows),
            "skip_invalid": skip_invalid,
            "response_format": response_format,
            "samples": samples,
            "temperature": temperature,
            "max_new_tokens": max_new_tokens,
            "batch_size": batch_size,
            "batch_order": "prompt length",  # eval batches before it were cut in row order
            "seed": seed,
            "precision": precision,
        } | ({"image_ablation": list(conditions)} if conditions else {})
        partial = PartialResponses(out / PARTIAL_FILE, settings)
        remove_outputs(earlier)  # --overwrite: the inputs check out; no stale report stays
        if partial.batches:
            typer.echo(f"resuming: {len(partial.batches)} batches answered before", err=True)
        partners = ablation.swap_partners(rows, seed) if conditions else []
        blank = out / ablation.BLANK_FOLDER
        asked = {"real": rows} | {
            c: ablation.ablated_rows(rows, c, partners, blank) for c in conditions
        }
        with Progress() as progress:
            task = progress.add_task("generating", total=len(rows) * len(asked))
            found, precision = answer_conditions(
                model,
                asked,
                response_format=response_format,
                progress=lambda n: progress.advance(task, n),
                samples=samples,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
                seed=seed,
                partial=partial,
                precision=precision,
                device=device,
            )
        records = found.pop("real")
        metrics = metrics_from_records(records) | {"precision": precision}
        metrics |= prior_accuracy(rows) | {"skipped": loaded.skipped}
        if conditions:
            reliance = ablation.image_reliance(rows, records, found, partners, seed=seed)
            metrics["image_ablation"] = reliance
        write_report(metrics, out, f"{model} on {data.name}", records, found)
        partial.finish()
    typer.echo((out / "eval.md").read_text())
    typer.echo(f"report: {out}")


@app.command()
def align(
    data: Path = typer.Option(
        ..., exists=True, dir_okay=False, help="Rows with caption (+ rationale for stage 2)."
    ),
    out: Path = typer.Option(None, help="Asset folder (default: the repo's assets/smolvlm-dino)."),
    work: Path = typer.Option(Path("runs/align"), help="Checkpoints of both stages."),
    projector_steps: int = typer.Option(
        200, help="Stage 1: projector-only caption steps (0: skip, keep the initial projector)."
    ),
    format_steps: int = typer.Option(100, help="Stage 2: LoRA format SFT steps (0: skip)."),
    batch_size: int = typer.Option(8),
    projector_lr: float = typer.Option(1e-3, help="Stage 1 learning rate."),
    lora_lr: float = typer.Option(2e-4, help="Stage 2 learning rate."),
    tune_projector: bool = typer.Option(
        True, help="Stage 2 also trains the projector (LLaVA stage 2); off: LoRA only."
    ),
    resume: bool = typer.Option(False, help="Continue each stage from its last checkpoint."),
    overwrite: bool = typer.Option(False, help="Start both stages afresh in --work."),
) -> None:
    """Align the default VLM: train its projector on captions, then teach the format."""
    from model_zoo.outputs import OutputError, prepare_outputs, remove_outputs
    from model_zoo.smolvlm import assets_folder
    from observe_r1.align import run_align
    from observe_r1.data.rows import InputError, check_writable, read_rows

    with _clean_errors():
        check_size("--projector-steps", projector_steps, MAX_STEPS, low=0)
        check_size("--format-steps", format_steps, MAX_STEPS, low=0)
        check_size("--batch-size", batch_size, MAX_BATCH)
        _positive("--projector-lr", projector_lr)
        _positive("--lora-lr", lora_lr)
        check_writable(out or assets_folder(), "--out", folder=True)
        if resume and overwrite:
            raise OutputError(
                "--resume continues the stages in --work, --overwrite replaces them: give one"
            )
        stages = () if resume else ("projector", "format")  # checkpoints of an earlier run
        earlier = prepare_outputs(
            work, option="--work", inputs=[data], products=stages, overwrite=overwrite
        )
        rows = read_rows(data).rows
        needed = ["caption"] + (["rationale"] if format_steps else [])
        for number, row in enumerate(rows, start=1):
            missing = [key for key in needed if not row.get(key)]
            if missing:
                raise InputError(f"{data}: row {number}: missing field '{missing[0]}'")
        remove_outputs(earlier)  # --overwrite, once the rows check out
    assets = run_align(
        rows,
        out or assets_folder(),
        work,
        projector_steps=projector_steps,
        format_steps=format_steps,
        batch_size=batch_size,
        projector_lr=projector_lr,
        lora_lr=lora_lr,
        format_tunes_projector=tune_projector,
        resume=resume,
    )
    typer.echo(f"assets: {assets} (the zoo's smolvlm-dino now assembles with them)")


@app.command()
def synth(
    out: Path = typer.Option(..., help="Folder for rows.jsonl and images/."),
    n: int = typer.Option(1000, help="Rows to draw."),
    seed: int = typer.Option(0, help="Same seed, byte-identical files."),
    families: str = typer.Option(
        None, help="Comma-separated subset of counting,arithmetic,dice,chart,geometry."
    ),
    image_size: int = typer.Option(112, help="Image side in pixels."),
    choice_share: float = typer.Option(0.25, help="Share of rows asked as multiple choice."),
    test_n: int = typer.Option(0, help="Also write a held-out test.jsonl of this many rows."),
    levels: str = typer.Option(
        "1:5",
        help="Levels to cycle through: comma-separated levels and ranges a:b from -1 to 5, "
        "'starter' (-1, 0) or 'all' (-1 to 5), e.g. starter,1:5.",
    ),
    answers: str = typer.Option(
        "natural",
        help="rows.jsonl's gold answers: natural (as drawn) or balanced (each answer of a "
        "family x level equally often).",
    ),
    test_answers: str = typer.Option("balanced", help="test.jsonl's gold answers, as --answers."),
    overwrite: bool = typer.Option(False, help=OVERWRITE_HELP),
) -> None:
    """Procedural image questions with checkable answers and intrinsic levels (default 1-5,
    starter levels -1 and 0 below them); prints each file's prior accuracy."""
    from model_zoo.outputs import prepare_outputs
    from observe_r1.data.rows import read_rows
    from observe_r1.data.synth import parse_levels, synthesize
    from observe_r1.evaluation.prior import prior_accuracy

    with _clean_errors():
        check_size("--n", n, MAX_ROWS)
        check_size("--test-n", test_n, MAX_ROWS, low=0)
        check_size("--seed", seed, MAX_SEED, low=0)
        products = ("rows.jsonl", "test.jsonl", "images")
        prepare_outputs(out, option="--out", products=products, overwrite=overwrite)
        rows = synthesize(
            out,
            n,
            seed=seed,
            families=families.split(",") if families else None,
            image_size=image_size,
            choice_share=choice_share,
            test_n=test_n,
            levels=parse_levels(levels),
            answers=answers,
            test_answers=test_answers,
        )
        written = [(rows, n, answers)]
        if test_n:
            written.append((out / "test.jsonl", test_n, test_answers))
        lines = []
        for path, count, mode in written:
            prior = prior_accuracy(read_rows(path).rows)
            lines.append(
                f"{path.stem}: {path} ({count} rows, {mode} answers): prior accuracy "
                f"{prior['prior_accuracy']:.3f}, chance {prior['chance_accuracy']:.3f}"
            )
    typer.echo("\n".join(lines))  # outside the guard: a closed stdout ends quietly


@app.command()
def prior(
    data: Path = typer.Argument(..., exists=True, dir_okay=False, help="Rows JSONL."),
) -> None:
    """The rows' prior accuracy: what the best constant answer per family x level x format
    scores (judged as eval judges accuracy), beside chance, overall and per stratum."""
    from observe_r1.data.rows import read_rows
    from observe_r1.evaluation.prior import prior_accuracy, prior_lines

    with _clean_errors():
        report = prior_accuracy(read_rows(data).rows)
    typer.echo("\n".join(prior_lines(report)))


@app.command()
def ladder(
    input_: Path = typer.Option(..., "--input", help="Canonical rows JSONL."),
    model: str = typer.Option(..., help="Zoo name, HF id or folder of the scoring VLM."),
    out: Path = typer.Option(..., help="Ladder JSONL (stats, plot and cache go next to it)."),
    rollouts: int = typer.Option(8, help="Sampled responses per row (N)."),
    size: int = typer.Option(None, help="Rows to keep in the end (default: all)."),
    seed: int = typer.Option(0, help="Seed of the mixing and sampling."),
    batch_size: int = typer.Option(16, help="Prompts per generate call."),
    max_new_tokens: int = typer.Option(512, help="Token limit of a step-by-step response."),
    temperature: float = typer.Option(1.0, help="Sampling temperature of the N responses."),
    own_share: float = typer.Option(0.6, help="Share of a bucket drawn from its own level."),
    spread: int = typer.Option(2, help="Neighbouring levels a bucket may draw from, each side."),
    easy_quantile: float = typer.Option(
        0.25, help="Drop difficulty-0 rows below this quantile of their complexity."
    ),
    easy_min_tokens: float = typer.Option(
        None, help="Drop difficulty-0 rows below this many tokens instead."
    ),
    allow_words: bool = typer.Option(False, help="Also keep short word answers (yes, red)."),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
    greedy_filter: bool = typer.Option(
        True, help="Drop rows one greedy answer-only response gets right."
    ),
    skip_invalid: bool = typer.Option(False, help="Skip bad rows and count them."),
) -> None:
    """Build a NeuraLadder: filter, score with N rollouts, sort, mix, sample (resumable)."""
    from observe_r1.evaluation.evaluate import check_model
    from observe_r1.ladder.build import LadderConfig, build_ladder, side_paths

    with _clean_errors():
        check_size("--rollouts", rollouts, MAX_SAMPLES)
        check_size("--size", size, MAX_ROWS)
        check_size("--batch-size", batch_size, MAX_BATCH)
        check_size("--max-new-tokens", max_new_tokens, MAX_TOKENS)
        _sampling(temperature, seed)
        config = LadderConfig(
            input=input_,
            model=model,
            out=out,
            rollouts=rollouts,
            size=size,
            seed=seed,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            own_share=own_share,
            spread=spread,
            easy_quantile=easy_quantile,
            easy_min_tokens=easy_min_tokens,
            allow_words=allow_words,
            greedy_filter=greedy_filter,
            skip_invalid=skip_invalid,
            precision=precision,
        )
        config.check_outputs()
        check_model(model)
        stats = build_ladder(config)
    removed = ", ".join(f"{step} {count}" for step, count in stats["removed"].items())
    typer.echo(f"rows: {stats['input_rows']} in, removed: {removed}")
    typer.echo(f"ladder: {out} ({stats['output_rows']} rows, {stats['needs_review']} to review)")
    rho = stats["spearman_level_difficulty"]
    typer.echo("spearman(level, difficulty): " + ("n/a" if rho is None else f"{rho:.3f}"))
    speed = stats["rollouts"]["per_second"]
    typer.echo(f"rollouts/s: {speed:.1f}" if speed else "rollouts: all from the cache")
    typer.echo(f"stats: {side_paths(out)['stats']}")


@app.command("import")
def import_rows(
    format_: str = typer.Option(..., "--format", help="official | hf | easy-vqa"),
    input_: Path = typer.Option(
        None, "--input", help="JSONL (official), dataset folder (hf), data folder (easy-vqa)."
    ),
    out: Path = typer.Option(..., help="Folder for rows.jsonl (and images/)."),
    split: str = typer.Option(None, help="hf: split of a DatasetDict; easy-vqa: train | test."),
    limit: int = typer.Option(None, help="hf, easy-vqa: import only the first N rows."),
    image_column: str = typer.Option("image", help="hf: image column."),
    question_column: str = typer.Option("question", help="hf: question column."),
    answer_column: str = typer.Option("answer", help="hf: answer column."),
    choices_column: str = typer.Option(None, help="hf: options column, if multiple choice."),
    seed: int = typer.Option(0, help="easy-vqa: seed of the colour options."),
    skip_invalid: bool = typer.Option(False, help="Skip bad rows and count them."),
    overwrite: bool = typer.Option(False, help=OVERWRITE_HELP),
) -> None:
    """Canonical rows from the official Observe-R1 JSONL, a saved HF dataset or easy-vqa."""
    from model_zoo.outputs import prepare_outputs
    from observe_r1.data import importers
    from observe_r1.data.rows import RowError

    with _clean_errors():
        check_size("--limit", limit, MAX_ROWS)
        check_size("--seed", seed, MAX_SEED, low=0)
        products = ("rows.jsonl", "images")
        prepare_outputs(
            out, option="--out", inputs=[input_], products=products, overwrite=overwrite
        )
        if format_ == "official":
            if input_ is None:
                raise RowError("--format official needs --input FILE.jsonl")
            loaded = importers.import_official(input_, out, skip_invalid=skip_invalid)
        elif format_ == "hf":
            if input_ is None:
                raise RowError("--format hf needs --input DATASET_FOLDER")
            loaded = importers.import_hf(
                input_,
                out,
                split=split,
                image_column=image_column,
                question_column=question_column,
                answer_column=answer_column,
                choices_column=choices_column,
                limit=limit,
                skip_invalid=skip_invalid,
            )
        elif format_ == "easy-vqa":
            loaded = importers.import_easy_vqa(
                out,
                source=input_,
                split=split or "train",
                limit=limit,
                seed=seed,
                skip_invalid=skip_invalid,
            )
        else:
            raise RowError(f"--format: unknown format {format_!r}; official, hf or easy-vqa")
    skipped = f", {loaded.skipped} invalid skipped" if loaded.skipped else ""
    typer.echo(f"rows: {out / 'rows.jsonl'} ({len(loaded.rows)}{skipped})")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/observe_r1_demo"), help="Run folder."),
    model: str = typer.Option("smolvlm-dino", help="Model to train (zoo name, HF id, folder)."),
    steps: int = typer.Option(4, help="GRPO steps."),
    train_rows: int = typer.Option(12, help="Synthetic training rows (before the ladder)."),
    test_rows: int = typer.Option(24, help="Held-out synthetic test rows."),
    rollouts: int = typer.Option(4, help="Ladder rollouts per row."),
) -> None:
    """synth -> ladder -> GRPO -> eval before/after -> report.md (a few minutes on CPU)."""
    from observe_r1.data.rows import check_writable
    from observe_r1.demo import run_demo
    from observe_r1.evaluation.evaluate import check_model

    with _clean_errors():
        check_size("--steps", steps, MAX_STEPS)
        check_size("--train-rows", train_rows, MAX_ROWS)
        check_size("--test-rows", test_rows, MAX_ROWS)
        check_size("--rollouts", rollouts, MAX_SAMPLES)
        check_writable(out, "--out", folder=True)
        check_model(model)
        report = run_demo(
            out, model=model, steps=steps, train_n=train_rows, test_n=test_rows, rollouts=rollouts
        )
    typer.echo(report.read_text())
    typer.echo(f"report: {report}")


if __name__ == "__main__":
    app()
