"""``eager-llm``: generative recommendation with an LLM (EAGER-LLM)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from model_zoo.cli import models

app = typer.Typer(
    help="EAGER-LLM: an LLM that recommends the next item through learned item indices.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(models)

data_app = typer.Typer(help="Inspect recommendation datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@app.callback()
def main() -> None:
    """Run a verb; every verb has --help."""


@data_app.command("stats")
def data_stats(
    dataset: str = typer.Option(
        ..., help="movielens-100k, movielens-1m, or a folder of RecBole / Amazon files."
    ),
    k_core: int = typer.Option(5, help="Iterative k-core threshold for users and items."),
    skip_invalid: bool = typer.Option(False, help="Skip users too short to split; count them."),
) -> None:
    """Users, items, interactions, density and mean sequence length after preprocessing."""
    from eager_llm.data import dataset_stats

    try:
        stats = dataset_stats(dataset, k_core=k_core, skip_invalid=skip_invalid)
    except (ValueError, FileNotFoundError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    table = Table(title=f"{dataset} (k-core {k_core})", show_header=False)
    for key, value in stats.items():
        table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    Console().print(table)
