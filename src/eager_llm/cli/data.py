"""The ``data stats`` and ``index`` verbs of ``eager-llm``: datasets and item indices.

Register with ``app.add_typer(data_app, name="data")`` and
``app.command("index")(index_command)``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from model_zoo.cli_errors import error_line
from yaml_config.limits import MAX_EPOCHS, MAX_SEED, MAX_WIDTH, check_size

DATASET_HELP = "movielens-100k, movielens-1m, or a folder of RecBole / Amazon files."
K_CORE_HELP = "Iterative k-core threshold for users and items."
INDEX_FILES = ("item_index.json", "items.json", "index_stats.json", "*_embeddings.npy", "sasrec")

data_app = typer.Typer(help="Inspect recommendation datasets.", no_args_is_help=True)


@data_app.command("stats")
def data_stats(
    dataset: str = typer.Option(..., help=DATASET_HELP),
    k_core: int = typer.Option(5, help=K_CORE_HELP),
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


def index_command(
    dataset: str = typer.Option(..., help=DATASET_HELP),
    out: Path = typer.Option(..., help="Folder for item_index.json, index_stats.json, ..."),
    k: str = typer.Option(
        "256", help="Clusters per level (K), or 'auto': ceil(sqrt(number of items))."
    ),
    indexer: str = typer.Option(
        "dki",
        help="dki, dki-bf (behaviour first), semantic, behaviour, rq-kmeans, rq-bf, rq-behav or "
        "rq-semantic (TIGER's codes).",
    ),
    k_core: int = typer.Option(5, help=K_CORE_HELP),
    skip_invalid: bool = typer.Option(False, help="Skip users too short to split."),
    semantic_model: str = typer.Option(
        "minilm-l6-v2", help="Text encoder: a zoo name, local folder or hub id."
    ),
    epochs: int = typer.Option(40, help="SASRec epochs (early stopping on validation NDCG@10)."),
    seed: int = typer.Option(0, help="Seed of SASRec and k-means."),
    cache_dir: Path | None = typer.Option(None, help="Embedding cache (default: zoo cache)."),
    overwrite: bool = typer.Option(False, help="Replace the index files an earlier run left."),
) -> None:
    """Build the item indices (semantic then behaviour codes by hierarchical k-means)."""
    from eager_llm.encoders import TrainConfig
    from eager_llm.indexing import IndexConfig, build_index
    from model_zoo.outputs import prepare_outputs

    if k != "auto" and not k.isdigit():
        typer.echo(f"error: --k must be an integer >= 2 or 'auto', got {k!r}", err=True)
        raise typer.Exit(2)
    try:
        check_size("--k", None if k == "auto" else int(k), MAX_WIDTH, low=2)
        check_size("--epochs", epochs, MAX_EPOCHS)
        check_size("--seed", seed, MAX_SEED, low=0)
        source = Path(dataset) if Path(dataset).exists() else None
        prepare_outputs(
            out, option="--out", inputs=[source], products=INDEX_FILES, overwrite=overwrite
        )
    except ValueError as error:
        typer.echo(error_line(str(error)), err=True)
        raise typer.Exit(2) from None
    config = IndexConfig(
        indexer=indexer,
        k=k if k == "auto" else int(k),
        seed=seed,
        k_core=k_core,
        skip_invalid=skip_invalid,
        semantic_model=semantic_model,
        train=TrainConfig(epochs=epochs, seed=seed),
        cache_root=str(cache_dir) if cache_dir else None,
    )
    try:
        stats = build_index(dataset, out, config)
    except (ValueError, FileNotFoundError) as error:
        typer.echo(error_line(str(error)), err=True)
        raise typer.Exit(2) from None
    table = Table(title=f"{dataset}: {indexer} index (K={stats['k']}) -> {out}", show_header=False)
    for key in ("num_items", "levels", "collision_rate", "extra_levels", "num_tokens"):
        table.add_row(key, str(stats[key]))
    table.add_row("level sources", " ".join(stats["level_sources"]))
    usage = " ".join(f"{level['used']}/{level['size']}" for level in stats["codebook_usage"])
    table.add_row("codebook usage", usage)
    for level in stats["level_statistics"]:
        table.add_row(
            f"level {level['level']} ({level['source']})",
            f"{level['values']} values, {level['prefixes']} prefixes, "
            f"{level['items_per_prefix_mean']} items/prefix (max {level['items_per_prefix_max']}),"
            f" decided {level['decided']:.1%}",
        )
    for name, value in stats["sasrec_valid"].items():
        table.add_row(f"SASRec valid {name}", f"{value:.4f}")
    for stage, seconds in stats["timings_s"].items():
        table.add_row(f"time {stage} (s)", f"{seconds:.1f}")
    Console().print(table)
