"""The ``eval``, ``recommend`` and ``demo`` verbs of ``eager-llm``.

Register with ``app.command("eval")(eval_command)``, ``app.command("recommend")(
recommend_command)`` and ``app.command("demo")(demo_command)``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from model_zoo.cli_errors import error_line
from yaml_config.limits import MAX_BATCH, MAX_BEAMS, MAX_EPOCHS, MAX_ROWS, MAX_STEPS, check_size

RUN_HELP = "Run folder of `eager-llm train` or `anneal` (holds final/)."
SEEN_HELP = (
    "keep: rank every item; remove: never return an item of the user's history "
    "(RecBole full-sort). Every method alike."
)
BEAM_SCORES_HELP = (
    "What each beam step's log-softmax normalises over: vocabulary (the model's log p of "
    "the index) or allowed (only the tokens the trie allows: forced levels add nothing)."
)


def _fail(message: str) -> typer.Exit:
    typer.echo(error_line(message), err=True)
    return typer.Exit(2)


def check_decoding(beams: int, batch_size: int, limit_users: int | None = None) -> None:
    """Raise ``SizeError`` for a ``--beams``, ``--batch-size`` or ``--limit-users`` out of range."""
    check_size("--beams", beams, MAX_BEAMS)
    check_size("--batch-size", batch_size, MAX_BATCH)
    check_size("--limit-users", limit_users, MAX_ROWS)


def check_protocol(seen: str, beam_scores: str) -> None:
    """Raise ``ValueError`` naming ``--seen`` or ``--beam-scores`` for a value not offered."""
    from eager_llm.baselines import SEEN
    from eager_llm.decoding import BEAM_SCORES

    for option, value, choices in (
        ("--seen", seen, SEEN),
        ("--beam-scores", beam_scores, BEAM_SCORES),
    ):
        if value not in choices:
            raise ValueError(f"{option} must be {' or '.join(choices)}, got {value!r}")


def eval_command(
    run: Path = typer.Option(..., exists=True, file_okay=False, help=RUN_HELP),
    split: str = typer.Option("test", help="test or valid."),
    beams: int = typer.Option(20, help="Beams = items ranked per user."),
    batch_size: int = typer.Option(16, help="Users decoded together."),
    limit_users: int = typer.Option(None, help="Only the first N users of the split."),
    compare: list[str] = typer.Option(
        None, help="Another run to evaluate: NAME=FOLDER (repeatable)."
    ),
    dtype: str = typer.Option(
        "auto",
        help="auto (bfloat16 on a GPU with bf16 units, float32 on a CPU), float32 or bfloat16 "
        "(about 2x faster on CPU).",
    ),
    device: str = typer.Option("auto", help="auto (cuda when there is a GPU) | cpu | cuda."),
    instructions: str = typer.Option(
        "0", help="Seqrec instructions to rank under: ids (0,2,4) or 'all' (mean, min, max)."
    ),
    seen: str = typer.Option("keep", help=SEEN_HELP),
    beam_scores: str = typer.Option("vocabulary", help=BEAM_SCORES_HELP),
) -> None:
    """Hit@1, Recall and NDCG@5/10, Hit@20 of a run, most-popular, SASRec and sibling runs.

    Sibling runs (evaluated when DIR/../NAME/final exists): stage1, no-gct, single-source,
    tiger. Writes RUN/eval.json, RUN/eval.md and RUN/eval.png (the test split, seen items
    kept, vocabulary scores; another split or protocol adds its name: eval-remove.md,
    eval-valid.md, ...). Under `accelerate launch` the users are split across the processes;
    the first writes the report."""
    import torch

    from eager_llm.evaluate import evaluate, markdown_table, protocol_line, write_report
    from eager_llm.instructions import parse_instructions
    from eager_llm.sharding import current_shard
    from eager_llm.training.preflight import check_trained_run
    from model_zoo.hardware import cuda_has_bf16, resolve_device, weights_dtype

    try:
        check_decoding(beams, batch_size, limit_users)
        check_protocol(seen, beam_scores)
        chosen = parse_instructions(instructions)
        try:
            where = resolve_device(device, torch.cuda.is_available())
        except ValueError as error:
            raise ValueError(f"--device: {error}") from None
        dtype = weights_dtype(dtype, where, cuda_has_bf16())
        check_trained_run(run)  # errors name the file
        shard, device = current_shard(where)
        report = evaluate(
            run,
            split=split,
            beams=beams,
            batch_size=batch_size,
            limit_users=limit_users,
            compare=compare or [],
            dtype=dtype,
            instructions=chosen,
            seen=seen,
            beam_scores=beam_scores,
            shard=shard,
            device=device,
        )
    except (ValueError, FileNotFoundError) as error:
        raise _fail(str(error)) from None
    if not shard.is_main:
        return
    markdown = write_report(report, run)
    typer.echo(protocol_line(report))
    typer.echo(markdown_table(report["results"]))
    typer.echo(f"report: {markdown}")


def _run_folder(run: Path) -> Path:
    """A run folder, also when given as its ``final/``."""
    return run.parent if run.name == "final" and not (run / "final").is_dir() else run


def recommend_command(
    run: Path = typer.Option(..., exists=True, file_okay=False, help=RUN_HELP),
    history: str = typer.Option(
        None, help="One history: item ids, oldest first, separated by commas."
    ),
    input_: Path = typer.Option(
        None,
        "--input",
        exists=True,
        dir_okay=False,
        help='Many histories: JSON lines {"user": ..., "history": [item ids]}.',
    ),
    output: Path = typer.Option(
        None, help="JSON lines of the top-k per input line (with --input; a rerun continues)."
    ),
    k: int = typer.Option(10, help="Items to recommend."),
    batch_size: int = typer.Option(16, help="Users decoded together (with --input)."),
    dtype: str = typer.Option("float32", help="float32 or bfloat16."),
    seen: str = typer.Option(
        "keep", help="keep or remove: never recommend an item of the history given."
    ),
    beam_scores: str = typer.Option("vocabulary", help=BEAM_SCORES_HELP),
) -> None:
    """The top-k next items of one history (printed with titles), or of every history of
    --input (written to --output, resumable), by the same decoder as `eval`."""
    import torch

    from eager_llm.recommend import completed, list_lengths, read_requests, recommend_file
    from eager_llm.run_decoder import RunDecoder, load_run
    from eager_llm.training.index_files import load_index, load_indexed_dataset
    from eager_llm.training.model import DTYPES
    from eager_llm.training.preflight import check_trained_run
    from model_zoo.cli_errors import expected_errors
    from model_zoo.outputs import check_input_and_output

    run = _run_folder(run)
    if (history is None) == (input_ is None):
        raise _fail("give either --history (one user) or --input with --output (many users)")
    if (input_ is None) != (output is None):
        raise _fail("--input and --output go together")
    if dtype not in DTYPES:
        raise _fail(f"--dtype must be one of {', '.join(DTYPES)}")
    item_ids = [item.strip() for item in (history or "").split(",") if item.strip()]
    if history is not None and not item_ids:
        raise _fail("--history is empty: give item ids separated by commas, e.g. 1,50,172")
    try:
        check_size("--k", k, MAX_BEAMS)
        check_size("--batch-size", batch_size, MAX_BATCH)
        check_protocol(seen, beam_scores)
        options = {"seen": seen, "beam_scores": beam_scores}
        if input_ is not None:
            check_input_and_output(input_, output)
        check_trained_run(run)  # errors name the file
        loaded = load_run(run)
        if input_ is not None:  # the input and what the output holds, before the model
            requests = read_requests(input_, loaded.item_index)
            lengths = list_lengths(requests, k, len(loaded.item_index), seen)
            done = completed(output, requests, lengths, options)
        elif unknown := [item for item in item_ids if item not in loaded.item_index]:
            raise ValueError(f"unknown item ids (not in the run's index): {', '.join(unknown)}")
        else:
            _, catalog = load_indexed_dataset(load_index(loaded.index))
    except (ValueError, FileNotFoundError) as error:
        raise _fail(str(error)) from None
    decoder = RunDecoder(loaded, dtype, "cuda" if torch.cuda.is_available() else "cpu")
    if input_ is not None:
        with expected_errors():  # an unwritable --output: one line
            recommend_file(decoder, requests, output, start=done, k=k, batch_size=batch_size,
                           options=options)  # fmt: skip
        typer.echo(f"{output}: {len(requests)} users ({done} were there before)")
        return
    exclude = [item_ids] if seen == "remove" else None
    [found] = decoder.top_k(
        decoder.prompts([item_ids]), k, exclude=exclude, beam_scores=beam_scores
    )
    typer.echo("history: " + "; ".join(catalog[item].title for item in item_ids))
    for rank, (item, score) in enumerate(found, 1):
        typer.echo(f"{rank:>3}. {catalog[item].title} (item {item})  log p = {score:.3f}")


def demo_command(
    out: Path = typer.Option(Path("runs/eager_llm_demo"), help="Demo folder."),
    model: str = typer.Option("smollm2-135m-instruct", help="Backbone (zoo name, hub id, folder)."),
    config: Path = typer.Option(None, help="Training config (default: smol-ml100k.yaml)."),
    stage1_steps: int = typer.Option(None, help="Stage-1 steps (default: the demo budget)."),
    stage2_steps: int = typer.Option(None, help="Stage-2 steps (default: the demo budget)."),
    sasrec_epochs: int = typer.Option(None, help="SASRec epochs (default: the demo budget)."),
    users: int = typer.Option(None, help="Test users evaluated (default: the demo budget)."),
    valid_users: int = typer.Option(None, help="Validation users of stage 1 (default: budget)."),
    eval_steps: int = typer.Option(
        None, help="Stage-1 steps between validations (default: budget)."
    ),
) -> None:
    """ML-100K -> index -> stage 1 -> stage 2 -> eval vs popularity and SASRec -> report.md."""
    from eager_llm.demo import Budget, run_demo

    chosen = {
        "stage1_steps": stage1_steps,
        "stage2_steps": stage2_steps,
        "sasrec_epochs": sasrec_epochs,
        "users": users,
        "valid_users": valid_users,
        "eval_steps": eval_steps,
    }
    caps = {"sasrec_epochs": MAX_EPOCHS, "users": MAX_ROWS, "valid_users": MAX_ROWS}
    try:
        for key, value in chosen.items():
            check_size(f"--{key.replace('_', '-')}", value, caps.get(key, MAX_STEPS))
    except ValueError as error:
        raise _fail(str(error)) from None
    budget = Budget(**{key: value for key, value in chosen.items() if value is not None})
    report = run_demo(out, model=model, config=config, budget=budget)
    typer.echo(report.read_text())
    typer.echo(f"report: {report}")
