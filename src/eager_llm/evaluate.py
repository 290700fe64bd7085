"""``eager-llm eval``: Hit@1, Recall@5/10, NDCG@5/10 and Hit@20 (full ranking) of a trained
run and of the baselines on one leave-one-out split, written as ``eval.json``, ``eval.md`` and
``eval.png``. With one held-out item per user Hit@k is Recall@k (:mod:`eager_llm.metrics`).

A run folder (``eager-llm train`` or ``anneal``) holds ``final/``: the LM and tokenizer,
``item_index.json`` and ``run_settings.json`` (the index folder, prompt template and history
length of training). The index folder's ``index_stats.json`` says how to reload the dataset
(:func:`eager_llm.training.load_indexed_dataset`); its leave-one-out split gives the users.

Compared on the same users, in this order:

- the run (``--run DIR``): trie-constrained beam search (:class:`eager_llm.run_decoder.RunDecoder`)
  from the training prompt, under one or several seqrec instructions
  (:mod:`eager_llm.instructions`; LC-Rec's mean, min and max);
- most-popular and SASRec (:mod:`eager_llm.baselines`; SASRec is the behaviour encoder of the
  index folder, ``index/sasrec``);
- the sibling runs of ``DIR`` named in :data:`SIBLINGS`, when they exist, then each
  ``--compare NAME=FOLDER``. A compared run decodes with its own ``final/`` (model, item
  index, template) and must index the same items; its index may differ (TIGER, single-source).
  A compared folder holding ``tiger.json`` (``eager-llm tiger``; the sibling ``tiger-t5``) is
  the TIGER baseline, ranked by its T5 (:func:`eager_llm.tiger.tiger_rankings`).

One protocol for every method (``seen``, recorded in ``eval.json`` and the report):
``keep`` ranks the whole catalogue (LC-Rec / TIGER-style Amazon evaluations); ``remove``
never lets an item of the user's history (its training sequence, and on the test split the
validation item: everything before the target) fill a slot, as RecBole's full-sort
evaluation does: the beam searches prune them from the user's trie
(:mod:`eager_llm.decoding`, :func:`eager_llm.tiger.rank`), the baselines mask their scores.
``beam_scores`` says what each beam step's log-softmax normalises over
(:data:`eager_llm.decoding.BEAM_SCORES`).

``eval.json`` keeps every method's per-user 0-based target rank (-1: not in its top-k), so
``eval.md`` gives each method's difference to most-popular and SASRec on the same users with
a paired bootstrap 95 % interval (:mod:`model_zoo.significance`). Under ``accelerate launch``
the LLM decoding is split across processes by batch and gathered (:mod:`eager_llm.sharding`),
and the report is the one process would write.

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

from eager_llm.baselines import check_seen, most_popular, sasrec_rankings
from eager_llm.data import Example, leave_one_out
from eager_llm.decoding import BEAM_SCORES
from eager_llm.instructions import spread
from eager_llm.metrics import evaluate_rankings, list_ranks, per_user
from eager_llm.run_decoder import Run, RunDecoder, load_run
from eager_llm.sharding import Shard, deal, gather, merge
from eager_llm.tiger import STATE as TIGER_STATE
from eager_llm.tiger import tiger_rankings
from eager_llm.training.index_files import IndexFiles, load_index, load_indexed_dataset
from eager_llm.training.model import DTYPES
from model_zoo.significance import paired_bootstrap

SIBLINGS = {
    "stage1": "w/o annealing (stage 1)",
    "no-gct": "w/o GCT",
    "single-source": "single-source index",
    "tiger": "TIGER-style (semantic index, seqrec)",
}
HIT_KS = (1, 20)
METRICS = ("hit@1", "recall@5", "recall@10", "ndcg@5", "ndcg@10", "hit@20")
NAMES = {"hit@1": "Hit@1", "recall@5": "Recall@5", "recall@10": "Recall@10",
         "ndcg@5": "NDCG@5", "ndcg@10": "NDCG@10", "hit@20": "Hit@20"}  # fmt: skip


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
    """The users of one split: ``examples`` (item indices), ``item_ids`` (index -> id), the
    training sequences ``train`` (for the popularity counts) and per example ``seen``, every
    item of the user before the target (the training sequence, plus the validation item on
    the test split; ``examples`` keep only the last ``max_history`` of them)."""

    files: IndexFiles
    examples: list[Example]
    item_ids: list[str]
    train: list[np.ndarray]
    seen: list[list[int]]


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
    seen = [loo.train[e.user].tolist() for e in examples]
    if split == "test":
        seen = [[*items, loo.valid[e.user].target] for items, e in zip(seen, examples, strict=True)]
    return EvalUsers(files, examples, files.item_ids, loo.train, seen)


def check_items(run: Run, item_ids: Sequence[str]) -> None:
    """The run's index must name exactly the dataset's items (so every target can be
    ranked); raises ``ValueError`` otherwise."""
    if set(run.item_index) != set(item_ids):
        missing = len(set(item_ids) - set(run.item_index))
        extra = len(set(run.item_index) - set(item_ids))
        raise ValueError(
            f"{run.folder}: its item index does not match the dataset's items ({missing} "
            f"items without an index, {extra} unknown to the dataset): another dataset?"
        )


def decode_users(
    decoder: RunDecoder,
    users: EvalUsers,
    *,
    beams: int = 20,
    batch_size: int = 16,
    instruction: int = 0,
    seen: str = "keep",
    beam_scores: str = "vocabulary",
    shard: Shard = Shard(),
    progress: bool = True,
    label: str = "",
) -> dict[int, list[int]]:
    """User (position in ``users.examples``) -> top-``beams`` item indices, for the users
    of this ``shard``'s batches: users sorted by prompt length (less padding), cut every
    ``batch_size``, every ``shard.world``-th batch (:mod:`eager_llm.sharding`). Under
    ``seen="remove"`` no item of ``users.seen`` is returned."""
    check_seen(seen)
    position = {item_id: i for i, item_id in enumerate(users.item_ids)}
    histories = [[users.item_ids[i] for i in e.history] for e in users.examples]
    prompts = decoder.prompts(histories, instruction)
    removed = [{users.item_ids[i] for i in items} for items in users.seen]
    order = sorted(range(len(prompts)), key=lambda u: len(prompts[u]))
    batches = deal([order[s : s + batch_size] for s in range(0, len(order), batch_size)], shard)
    ranked: dict[int, list[int]] = {}
    total = sum(len(batch) for batch in batches)
    with tqdm(total=total, desc=label, unit="user", disable=not progress) as bar:
        for chunk in batches:
            exclude = [removed[u] for u in chunk] if seen == "remove" else None
            found = decoder.top_k(
                [prompts[u] for u in chunk],
                beams,
                batch_size,
                exclude=exclude,
                beam_scores=beam_scores,
            )
            for user, items in zip(chunk, found, strict=True):
                ranked[user] = [position[item_id] for item_id, _ in items]
            bar.update(len(chunk))
    return ranked


def rank_with_run(decoder: RunDecoder, users: EvalUsers, *, shard: Shard = Shard(), **decode):
    """Top-``beams`` item indices of every user, in the order of ``users.examples``: this
    shard's :func:`decode_users` gathered from all processes (``decode``: its options)."""
    local = decode_users(decoder, users, shard=shard, **decode)
    return merge(gather(local, shard), len(users.examples))


def scored(method: str, folder: str, ranked, targets, seconds: float) -> dict:
    """A result row: the metrics (:data:`METRICS`), ``n_users``, ``seconds`` and the
    per-user 0-based target ``ranks`` (-1: not in the list)."""
    metrics = evaluate_rankings(ranked, targets, ks=(5, 10), hit_ks=HIT_KS)
    ranks = [-1 if np.isinf(r) else int(r) for r in list_ranks(ranked, targets)]
    row = {"method": method, "run": folder, **metrics}
    return {**row, "seconds": round(seconds, 2), "ranks": ranks}


def evaluate(
    run_folder: str | Path,
    *,
    split: str = "test",
    beams: int = 20,
    batch_size: int = 16,
    limit_users: int | None = None,
    compare: Sequence[str] = (),
    dtype: str = "float32",
    instructions: Sequence[int] = (0,),
    seen: str = "keep",
    beam_scores: str = "vocabulary",
    shard: Shard = Shard(),
    device: str = "cpu",
    progress: bool = True,
) -> dict:
    """Metrics of the run, the baselines and the compared runs (module docstring) under the
    ``seen`` protocol (``keep`` or ``remove`` the users' history items, every method alike),
    the beam searches scoring with ``beam_scores``.

    Each LLM run decodes under every seqrec instruction of ``instructions``; its row is the
    first, and with several it also holds ``instructions`` (the row of each) and
    ``across_instructions`` (mean, min and max of each metric). Under ``shard`` (one of
    several processes) the LLM users are split across processes and gathered, so every
    process returns the same report (the baselines run on each).

    Returns ``{"split", "dataset", "n_users", "n_items", "seen", "beams", "beam_scores",
    "dtype", "threads", "processes", "instructions", "results": [{"method", "run", "hit@1",
    "recall@5", ..., "n_users", "seconds", "ranks"}]}``.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}")
    check_seen(seen)
    if beam_scores not in BEAM_SCORES:
        raise ValueError(f"beam scores must be one of {', '.join(BEAM_SCORES)}")
    if not instructions:
        raise ValueError("no instruction to evaluate")
    run = load_run(run_folder)
    compared = compared_runs(run.folder, compare)
    tigers = {label: f for label, f in compared.items() if (f / TIGER_STATE).is_file()}
    others = {label: load_run(f) for label, f in compared.items() if label not in tigers}
    users = load_users(run.index, split, run.max_history, limit_users)
    for checked in (run, *others.values()):
        check_items(checked, users.item_ids)
    targets = [e.target for e in users.examples]
    results = []

    def record(method: str, folder: str, rank: Callable[..., list[list[int]]], *args, **kwargs):
        started = time.perf_counter()
        ranked = rank(*args, **kwargs)
        results.append(scored(method, folder, ranked, targets, time.perf_counter() - started))

    def record_run(method: str, llm: Run, label: str):
        started = time.perf_counter()
        decoder = RunDecoder(llm, dtype, device)
        decode = {"beams": beams, "batch_size": batch_size, "seen": seen,
                  "beam_scores": beam_scores, "shard": shard, "label": label}  # fmt: skip
        rows = []
        for instruction in instructions:
            show = progress and shard.is_main
            ranked = rank_with_run(decoder, users, instruction=instruction, progress=show, **decode)
            seconds, started = time.perf_counter() - started, time.perf_counter()
            rows.append(scored(method, str(llm.folder), ranked, targets, seconds))
        row = rows[0]
        if len(rows) > 1:
            keep = (*METRICS, "seconds", "ranks")
            row["instructions"] = [
                {"instruction": i, **{key: r[key] for key in keep}}
                for i, r in zip(instructions, rows, strict=True)
            ]
            row["across_instructions"] = spread(rows, METRICS)
        results.append(row)

    record_run(f"EAGER-LLM ({run.folder.name})", run, run.folder.name)
    n_items = len(users.item_ids)
    record("most popular", "", most_popular, users.train, n_items, len(targets), beams,
           histories=users.seen, seen=seen)  # fmt: skip
    histories = [list(e.history) for e in users.examples]
    sasrec = run.index / "sasrec"
    # SASRec's input is the last max_len items of what it gets, its mask all of them: under
    # remove it gets every seen item (the same input whenever max_history >= its max_len).
    sasrec_input = users.seen if seen == "remove" else histories
    record("SASRec", str(sasrec), sasrec_rankings, sasrec, sasrec_input, beams, seen=seen)
    for label, other in others.items():
        record_run(label, other, label)
    exclude = users.seen if seen == "remove" else None
    for label, folder in tigers.items():
        record(label, str(folder), tiger_rankings, folder, users.item_ids, histories, beams,
               exclude=exclude, beam_scores=beam_scores)  # fmt: skip
    return {
        "split": split,
        "dataset": users.files.dataset,
        "n_users": len(targets),
        "n_items": n_items,
        "seen": seen,
        "beams": beams,
        "beam_scores": beam_scores,
        "dtype": dtype,
        "threads": torch.get_num_threads(),
        "processes": shard.world,
        "instructions": list(instructions),
        "results": results,
    }


def markdown_table(results: Sequence[dict]) -> str:
    """One row per method: the metrics (:data:`METRICS`; those an older ``eval.json``
    holds, without Hit@k), seconds and the run folder, relative to the working directory where
    it lies inside it (a run stores its index resolved: the page names no absolute path of the
    machine)."""
    keys = [key for key in METRICS if all(key in r for r in results)]
    lines = [
        f"| method | {' | '.join(NAMES[key] for key in keys)} | seconds | run |",
        "| --- " * (len(keys) + 3) + "|",
    ]
    for r in results:
        values = " | ".join(f"{r[key]:.4f}" for key in keys)
        lines.append(f"| {r['method']} | {values} | {r['seconds']:.1f} | {_shown(r['run'])} |")
    return "\n".join(lines)


def _shown(folder: str) -> str:
    """``folder`` relative to the working directory where it is an absolute path inside it."""
    path = Path(folder)
    if path.is_absolute() and path.is_relative_to(Path.cwd().resolve()):
        return str(path.relative_to(Path.cwd().resolve()))
    return folder


def instruction_table(results: Sequence[dict]) -> str:
    """Each LLM row evaluated under several instructions: mean [min, max] of each metric;
    empty when there is none."""
    rows = [r for r in results if "across_instructions" in r]
    if not rows:
        return ""
    lines = [
        f"| method | instructions | {' | '.join(NAMES[key] for key in METRICS)} |",
        "| --- " * (len(METRICS) + 2) + "|",
    ]
    for r in rows:
        spread_ = r["across_instructions"]
        cells = " | ".join(
            f"{spread_['mean'][key]:.4f} [{spread_['min'][key]:.4f}, {spread_['max'][key]:.4f}]"
            for key in METRICS
        )
        ids = ",".join(str(row["instruction"]) for row in r["instructions"])
        lines.append(f"| {r['method']} | {ids} | {cells} |")
    return "\n".join(lines)


def difference_table(
    results: Sequence[dict],
    references: Sequence[str] = ("most popular", "SASRec"),
    pairs: Sequence[tuple[str, str]] = (),
) -> str:
    """Each method's Recall@10 and NDCG@10 minus each reference's on the same users, then
    each ``(method, reference)`` of ``pairs`` whose two methods are present, with the paired
    bootstrap 95 % interval (10,000 resamples of users)."""
    by_method = {r["method"]: r for r in results if "ranks" in r}
    compared = [
        (r["method"], reference)
        for r in results
        for reference in references
        if r["method"] != reference and r["method"] in by_method and reference in by_method
    ]
    compared += [(a, b) for a, b in pairs if a in by_method and b in by_method]
    lines = [
        "| method | vs | ΔRecall@10 [95 % CI] | ΔNDCG@10 [95 % CI] |",
        "| --- | --- | --- | --- |",
    ]
    for method, reference in compared:
        cells = []
        for metric in ("recall@10", "ndcg@10"):
            mean, low, high = paired_bootstrap(
                per_user(by_method[method], metric), per_user(by_method[reference], metric)
            )
            cells.append(f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]")
        lines.append(f"| {method} | {reference} | {cells[0]} | {cells[1]} |")
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
    axis.set_xticks(range(len(METRICS)), [NAMES[key] for key in METRICS])
    axis.set(title=title, ylabel="mean over users")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def protocol_line(report: dict) -> str:
    """``protocol: seen items kept|removed; beam scores: ...`` of an ``evaluate`` report
    (an ``eval.json`` from before these options: kept, vocabulary)."""
    seen = {"keep": "kept", "remove": "removed"}[report.get("seen", "keep")]
    over = {"vocabulary": "log-softmax over the whole vocabulary",
            "allowed": "log-softmax over the trie's allowed tokens"}  # fmt: skip
    return (
        f"protocol: seen items {seen}; beam scores: {over[report.get('beam_scores', 'vocabulary')]}"
    )


def report_name(report: dict) -> str:
    """The stem of a report's files: ``eval`` for the test split under the default protocol,
    else ``eval`` plus what differs (``eval-remove``, ``eval-valid-remove-allowed``), so an
    evaluation under another split or protocol never replaces an earlier one."""
    differs = [
        value
        for value, default in (
            (report["split"], "test"),
            (report.get("seen", "keep"), "keep"),
            (report.get("beam_scores", "vocabulary"), "vocabulary"),
        )
        if value != default
    ]
    return "-".join(["eval", *differs])


def write_report(report: dict, folder: str | Path) -> Path:
    """``<name>.json``, ``.md`` and ``.png`` in ``folder`` (the name: :func:`report_name`);
    returns the markdown path."""
    folder, name = Path(folder), report_name(report)
    title = f"{report['split']} split, {report['n_users']} users, {report['n_items']} items"
    (folder / f"{name}.json").write_text(json.dumps(report, indent=1))
    plot_results(report["results"], folder / f"{name}.png", title)
    text = [
        f"# Evaluation: {title}",
        "",
        f"**{protocol_line(report)}**",
        "",
        f"Dataset `{report['dataset']}`; full ranking over all items (under `removed`, over the "
        f"items outside each user's history); {report['beams']} beams, {report['dtype']}, "
        f"torch threads: {report['threads']}, processes: {report.get('processes', 1)}. Hit@k "
        "equals Recall@k (one held-out item per user).",
        "",
        markdown_table(report["results"]),
        "",
    ]
    if report["beams"] < max(HIT_KS):
        text += [f"Lists hold {report['beams']} items: Hit@20 counts only those.", ""]
    if spread_table := instruction_table(report["results"]):
        text += ["Across seqrec instructions, mean [min, max] (the table above: the first):",
                 "", spread_table, ""]  # fmt: skip
    text += [
        "Differences on the same users (paired bootstrap):",
        "",
        difference_table(report["results"]),
        "",
        f"![eval]({name}.png)",
        "",
    ]
    (folder / f"{name}.md").write_text("\n".join(text))
    return folder / f"{name}.md"
