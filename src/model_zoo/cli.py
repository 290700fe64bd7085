"""The ``models`` verb shared by both command-line tools."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from model_zoo.registry import ZOO, resolve, status


def models(
    build: list[str] = typer.Option(
        None, "--build", help="Build (convert) these named models now; 'all' builds every one."
    ),
    rebuild: bool = typer.Option(False, help="Rebuild even when a valid cached copy exists."),
) -> None:
    """List the offline model zoo and whether each model is cached; optionally build some."""
    wanted = list(ZOO) if build and "all" in build else build or []
    unknown = sorted(set(wanted) - set(ZOO))
    if unknown:
        raise typer.BadParameter(f"unknown model(s): {', '.join(unknown)}", param_hint="--build")
    for name in wanted:
        print(f"{name}: {resolve(name, rebuild=rebuild)}")
    table = Table(title="model zoo (any other name is passed to Hugging Face unchanged)")
    for column in ("name", "status", "description"):
        table.add_column(column)
    for name, model in ZOO.items():
        table.add_row(name, status(name), model.description)
    Console().print(table)
