"""The ``baselines`` verb of ``eager-llm``: tuned non-LLM baselines on one split and protocol.

Register with ``app.command("baselines")(baselines_command)``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from model_zoo.cli_errors import error_line
from yaml_config.limits import MAX_TOKENS, check_size

PRODUCTS = ("baselines.json", "baselines.md")


def _fail(message: str) -> typer.Exit:
    typer.echo(error_line(message), err=True)
    return typer.Exit(2)


def parse_lengths(text: str) -> list[int]:
    """``"50,200"`` -> [50, 200]; ``"none"`` -> [] (no SASRec). Raises ``ValueError``."""
    if text.strip().lower() == "none":
        return []
    lengths = []
    for part in text.split(","):
        if not part.strip().isdigit():
            raise ValueError(f"--sasrec-lengths: {part.strip()!r} is not a history length")
        check_size("--sasrec-lengths", int(part), MAX_TOKENS)
        lengths.append(int(part))
    return lengths


def baselines_command(
    dataset: str = typer.Option(
        ..., help="movielens-100k, movielens-1m, or a folder of RecBole / Amazon files."
    ),
    out: Path = typer.Option(..., help="Folder for baselines.json and baselines.md."),
    split: str = typer.Option("test", help="valid or test."),
    seen: str = typer.Option("keep", help="keep or remove the user's history items."),
    tie_order: str = typer.Option(
        "file",
        help="Order of a user's events with equal timestamps before the split: file (file "
        "row order) or reversed (the later row first).",
    ),
    models: Path = typer.Option(
        None, help="Folder of the trained SASRec grid points (default: OUT/sasrec-models)."
    ),
    sasrec_lengths: str = typer.Option("50,200", help="SASRec history lengths, or 'none'."),
    train_missing: bool = typer.Option(
        True, help="Train SASRec grid points missing from --models (else skip them)."
    ),
    overwrite: bool = typer.Option(False, help="Replace an earlier baselines.json / .md."),
) -> None:
    """Most-popular, Markov co-occurrence, ItemKNN and SASRec (full softmax) on the same users.

    Each baseline's hyper-parameters are chosen on validation NDCG@10 under --seen, then the
    --split numbers are computed once; a user's events with equal timestamps are ordered by
    --tie-order. Writes OUT/baselines.json (per-user target ranks, the tuning tables) and
    OUT/baselines.md (metrics, paired differences to the strongest)."""
    from eager_llm.baselines.ranking import check_seen
    from eager_llm.baselines.report import metrics_table, write_report
    from eager_llm.baselines.tuning import SPLITS, evaluate_baselines
    from eager_llm.data import TIE_ORDERS
    from model_zoo.outputs import prepare_outputs, remove_outputs

    try:
        if split not in SPLITS:
            raise ValueError(f"--split must be 'valid' or 'test', got {split!r}")
        check_seen(seen)
        if tie_order not in TIE_ORDERS:
            raise ValueError(f"--tie-order must be 'file' or 'reversed', got {tie_order!r}")
        lengths = parse_lengths(sasrec_lengths)
        source = Path(dataset) if Path(dataset).exists() else None
        earlier = prepare_outputs(
            out, option="--out", inputs=[source], products=PRODUCTS, overwrite=overwrite
        )
        remove_outputs(earlier)
        report = evaluate_baselines(
            dataset,
            split,
            seen,
            models=models or out / "sasrec-models",
            sasrec_lengths=lengths,
            train_missing=train_missing,
            tie_order=tie_order,
            log=lambda line: typer.echo(line, err=True),
        )
    except (ValueError, FileNotFoundError) as error:
        raise _fail(str(error)) from None
    markdown = write_report(report, out)
    typer.echo(metrics_table(report["results"]))
    typer.echo(f"report: {markdown}")
