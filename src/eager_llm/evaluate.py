"""``eager-llm eval``: Recall@5/10 and NDCG@5/10 (full ranking) of a trained run and of the
baselines on one leave-one-out split, written as ``eval.json``, ``eval.md`` and ``eval.png``.

A run folder (``eager-llm train`` or ``anneal``) holds ``final/``: the LM and tokenizer,
``item_index.json`` and ``run_settings.json`` (the index folder, prompt template and history
length of training). The index folder's ``index_stats.json`` says how to reload the dataset
(:func:`eager_llm.training.load_indexed_dataset`); its leave-one-out split gives the users.

Compared on the same users, in this order:

- the run (``--run DIR``): trie-constrained beam search (:func:`eager_llm.decoding.recommend`)
  from the training prompt (:func:`eager_llm.tasks.recommendation_prompt`);
- most-popular and SASRec (:mod:`eager_llm.baselines`; SASRec is the behaviour encoder of the
  index folder, ``index/sasrec``);
- the sibling runs of ``DIR`` named in :data:`SIBLINGS`, when they exist, then each
  ``--compare NAME=FOLDER``. A compared run decodes with its own ``final/`` (model, item
  index, template) and must index the same items; its index may differ (TIGER, single-source).
  A compared folder holding ``tiger.json`` (``eager-llm tiger``; the sibling ``tiger-t5``) is
  the TIGER baseline, ranked by its T5 (:func:`eager_llm.tiger.tiger_rankings`).

``eval.json`` keeps every method's per-user 0-based target rank (-1: not in its top-k), so
``eval.md`` gives each method's difference to most-popular and SASRec on the same users with
a paired bootstrap 95 % interval (:mod:`eager_llm.significance`).

The conventional layout (``configs/eager_llm/*.yaml``)::

    runs/<name>/index          the DKI index (dataset, SASRec)
    runs/<name>/stage1         stage 1: all tasks + GCT
    runs/<name>/anneal         stage 2: annealing adapter (the usual --run)
    runs/<name>/no-gct         ablation: both stages with the GCT weights at 0
    runs/<name>/single-source  ablation: both stages on a one-source index
    runs/<name>/tiger          TIGER-style: semantic-only index, seqrec only, one stage
    runs/<name>/tiger-t5       TIGER: a T5 trained from scratch on semantic IDs
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from eager_llm.baselines import most_popular, sasrec_rankings
from eager_llm.data import Example, leave_one_out
from eager_llm.decoding import ItemTrie, recommend
from eager_llm.indexing import load_item_index
from eager_llm.metrics import evaluate_rankings, list_ranks, per_user_from_ranks
from eager_llm.significance import paired_bootstrap
from eager_llm.tasks import history_prompts
from eager_llm.tiger import STATE as TIGER_STATE
from eager_llm.tiger import tiger_rankings
from eager_llm.training.index_files import IndexFiles, load_index, load_indexed_dataset
from eager_llm.training.model import DTYPES, load_lm
from eager_llm.training.stages import RUN_SETTINGS

SIBLINGS = {
    "stage1": "w/o annealing (stage 1)",
    "no-gct": "w/o GCT",
    "single-source": "single-source index",
    "tiger": "TIGER-style (semantic index, seqrec)",
}
METRICS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")


@dataclass(frozen=True)
class Run:
    """A finished training run: ``final`` model folder, its ``item_index`` (item id ->
    tokens), and from ``run_settings.json`` the ``index`` folder, ``template`` and
    ``max_history``."""

    folder: Path
    final: Path
    item_index: dict[str, list[str]]
    index: Path
    template: str
    max_history: int
    precision: str = "float32"


def load_run(folder: str | Path) -> Run:
    """Read ``folder/final``; raises ``FileNotFoundError`` naming a missing file."""
    folder = Path(folder)
    final = folder / "final"
    for name in ("config.json", "item_index.json", RUN_SETTINGS):
        if not (final / name).is_file():
            raise FileNotFoundError(
                f"{folder}: no final/{name} (a run folder of `eager-llm train` or `anneal`)"
            )
    settings = json.loads((final / RUN_SETTINGS).read_text())
    return Run(
        folder=folder,
        final=final,
        item_index=load_item_index(final / "item_index.json"),
        index=Path(settings["index"]),
        template=settings["template"],
        max_history=settings["max_history"],
        precision=settings.get("precision", "float32"),
    )


def compared_runs(run: Path, compare: Sequence[str] = ()) -> dict[str, Path]:
    """Label -> folder of the other runs: existing siblings of ``run`` (:data:`SIBLINGS`,
    a folder with ``final/``, not ``run`` itself), then ``compare`` items ``NAME=FOLDER``."""
    found = {
        label: run.parent / name
        for name, label in SIBLINGS.items()
        if (run.parent / name / "final").is_dir() and (run.parent / name).resolve() != run.resolve()
    }
    if (run.parent / "tiger-t5" / TIGER_STATE).is_file():
        found["TIGER (T5 from scratch)"] = run.parent / "tiger-t5"
    for item in compare:
        name, sep, folder = item.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise ValueError(f"--compare {item!r} is not NAME=FOLDER")
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"--compare {item!r}: no folder {folder}")
        found[name.strip()] = Path(folder)
    return found


@dataclass(frozen=True)
class EvalUsers:
    """The users of one split: ``examples`` (item indices), ``item_ids`` (index -> id) and
    the training sequences ``train`` (for the popularity counts)."""

    files: IndexFiles
    examples: list[Example]
    item_ids: list[str]
    train: list[np.ndarray]


def load_users(
    index: str | Path, split: str, max_history: int, limit_users: int | None = None
) -> EvalUsers:
    """The ``split`` (``test`` or ``valid``) examples of the index's dataset: all users, or
    the first ``limit_users`` in user order."""
    if split not in ("test", "valid"):
        raise ValueError(f"split must be 'test' or 'valid', got {split!r}")
    files = load_index(index)
    interactions, _ = load_indexed_dataset(files)
    loo = leave_one_out(interactions, max_history=max_history)
    examples = getattr(loo, split)[:limit_users]
    return EvalUsers(files, examples, files.item_ids, loo.train)


def rank_with_run(
    run: Run,
    users: EvalUsers,
    *,
    beams: int = 20,
    batch_size: int = 16,
    dtype: str = "float32",
    progress: bool = True,
    label: str = "",
) -> list[list[int]]:
    """Top-``beams`` item indices per user from ``run``'s model by trie beam search.

    Users are decoded ``batch_size`` at a time, shortest prompts first (less padding),
    and returned in the order of ``users.examples``. A run trained under bf16 autocast
    decodes under bf16 autocast (its weights stay in ``dtype``), so ranking uses the
    precision of training. The run's index must name exactly the dataset's items (so every
    target can be ranked); anything else is an error."""
    if set(run.item_index) != set(users.item_ids):
        missing = len(set(users.item_ids) - set(run.item_index))
        extra = len(set(run.item_index) - set(users.item_ids))
        raise ValueError(
            f"{run.folder}: its item index does not match the dataset's items ({missing} "
            f"items without an index, {extra} unknown to the dataset): another dataset?"
        )
    tokenizer, model = load_lm(str(run.final), run.item_index, dtype)
    model.eval()
    trie = ItemTrie(run.item_index, tokenizer)
    position = {item_id: i for i, item_id in enumerate(users.item_ids)}
    indices = ["".join(run.item_index[item_id]) for item_id in users.item_ids]
    histories = [e.history for e in users.examples]
    prompts = history_prompts(indices, histories, run.max_history, run.template)
    device = next(model.parameters()).device.type
    autocast = torch.autocast(device, torch.bfloat16, enabled=run.precision == "bf16-autocast")
    order = sorted(range(len(prompts)), key=lambda u: len(prompts[u]))
    ranked: list[list[int]] = [[] for _ in prompts]
    with tqdm(total=len(prompts), desc=label, unit="user", disable=not progress) as bar:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            with autocast:
                found = recommend(
                    model,
                    tokenizer,
                    [prompts[u] for u in chunk],
                    trie,
                    k=beams,
                    batch_size=batch_size,
                )
            for user, items in zip(chunk, found, strict=True):
                ranked[user] = [position[item_id] for item_id, _ in items]
            bar.update(len(chunk))
    return ranked


def evaluate(
    run_folder: str | Path,
    *,
    split: str = "test",
    beams: int = 20,
    batch_size: int = 16,
    limit_users: int | None = None,
    compare: Sequence[str] = (),
    dtype: str = "float32",
    progress: bool = True,
) -> dict:
    """Metrics of the run, the baselines and the compared runs (module docstring).

    Returns ``{"split", "dataset", "n_users", "n_items", "beams", "dtype", "threads",
    "results": [{"method", "run", "recall@5", ..., "ndcg@10", "n_users", "seconds"}]}``.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}")
    run = load_run(run_folder)
    compared = compared_runs(run.folder, compare)
    tigers = {label: f for label, f in compared.items() if (f / TIGER_STATE).is_file()}
    others = {label: load_run(f) for label, f in compared.items() if label not in tigers}
    users = load_users(run.index, split, run.max_history, limit_users)
    targets = [e.target for e in users.examples]
    results = []

    def record(method: str, folder: str, rank: Callable[..., list[list[int]]], *args, **kwargs):
        started = time.perf_counter()
        ranked = rank(*args, **kwargs)
        seconds = round(time.perf_counter() - started, 2)
        metrics = evaluate_rankings(ranked, targets, ks=(5, 10))
        ranks = [-1 if np.isinf(r) else int(r) for r in list_ranks(ranked, targets)]
        results.append(
            {"method": method, "run": folder, **metrics, "seconds": seconds, "ranks": ranks}
        )

    decode = {"beams": beams, "batch_size": batch_size, "dtype": dtype, "progress": progress}
    name = run.folder.name
    record(f"EAGER-LLM ({name})", str(run.folder), rank_with_run, run, users, label=name, **decode)
    n_items = len(users.item_ids)
    record("most popular", "", most_popular, users.train, n_items, len(targets), beams)
    histories = [list(e.history) for e in users.examples]
    sasrec = run.index / "sasrec"
    record("SASRec", str(sasrec), sasrec_rankings, sasrec, histories, beams)
    for label, other in others.items():
        record(label, str(other.folder), rank_with_run, other, users, label=label, **decode)
    for label, folder in tigers.items():
        record(label, str(folder), tiger_rankings, folder, users.item_ids, histories, beams)
    return {
        "split": split,
        "dataset": users.files.dataset,
        "n_users": len(targets),
        "n_items": n_items,
        "beams": beams,
        "dtype": dtype,
        "threads": torch.get_num_threads(),
        "results": results,
    }


def markdown_table(results: Sequence[dict]) -> str:
    """One row per method: the four metrics, seconds and the run folder."""
    lines = [
        "| method | Recall@5 | Recall@10 | NDCG@5 | NDCG@10 | seconds | run |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        values = " | ".join(f"{r[key]:.4f}" for key in METRICS)
        lines.append(f"| {r['method']} | {values} | {r['seconds']:.1f} | {r['run']} |")
    return "\n".join(lines)


def per_user(result: dict, metric: str) -> np.ndarray:
    """Per-user values of ``metric`` (``recall@10``, ``ndcg@5``, ...) from a result's ranks."""
    name, k = metric.split("@")
    ranks = np.array([np.inf if r < 0 else r for r in result["ranks"]], dtype=np.float64)
    recall, ndcg = per_user_from_ranks(ranks, int(k))
    return recall if name == "recall" else ndcg


def difference_table(results: Sequence[dict], references=("most popular", "SASRec")) -> str:
    """Each method's Recall@10 and NDCG@10 minus each reference's on the same users, with
    the paired bootstrap 95 % interval (10,000 resamples of users)."""
    by_method = {r["method"]: r for r in results}
    lines = [
        "| method | vs | ΔRecall@10 [95 % CI] | ΔNDCG@10 [95 % CI] |",
        "| --- | --- | --- | --- |",
    ]
    for r in results:
        for reference in references:
            if r["method"] == reference or reference not in by_method or "ranks" not in r:
                continue
            cells = []
            for metric in ("recall@10", "ndcg@10"):
                mean, low, high = paired_bootstrap(
                    per_user(r, metric), per_user(by_method[reference], metric)
                )
                cells.append(f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]")
            lines.append(f"| {r['method']} | {reference} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def plot_results(results: Sequence[dict], out: Path, title: str) -> None:
    """Grouped bars: one group per metric, one bar per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / len(results)
    figure, axis = plt.subplots(figsize=(8, 3.8))
    for n, r in enumerate(results):
        x = [m + (n - (len(results) - 1) / 2) * width for m in range(len(METRICS))]
        axis.bar(x, [r[key] for key in METRICS], width, label=r["method"])
    axis.set_xticks(range(len(METRICS)), ["Recall@5", "Recall@10", "NDCG@5", "NDCG@10"])
    axis.set(title=title, ylabel="mean over users")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def write_report(report: dict, folder: str | Path) -> Path:
    """``eval.json``, ``eval.md`` and ``eval.png`` in ``folder``; returns the markdown path."""
    folder = Path(folder)
    title = f"{report['split']} split, {report['n_users']} users, {report['n_items']} items"
    (folder / "eval.json").write_text(json.dumps(report, indent=1))
    plot_results(report["results"], folder / "eval.png", title)
    text = [
        f"# Evaluation: {title}",
        "",
        f"Dataset `{report['dataset']}`; full ranking over all items, history items not "
        f"masked; {report['beams']} beams, {report['dtype']}, torch threads: "
        f"{report['threads']}.",
        "",
        markdown_table(report["results"]),
        "",
        "Differences on the same users (paired bootstrap):",
        "",
        difference_table(report["results"]),
        "",
        "![eval](eval.png)",
        "",
    ]
    (folder / "eval.md").write_text("\n".join(text))
    return folder / "eval.md"
