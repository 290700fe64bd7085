"""Each baseline's grid, chosen on the validation split, then scored on the requested split.

The protocol (:mod:`.ranking`): all users of the leave-one-out split; the validation example
of a user predicts ``s[-2]`` from the training sequence, the test example ``s[-1]`` from the
training sequence plus ``s[-2]``. A history is the user's whole past (no cut at 20): models
read their own window of it (the last ``last`` items, SASRec's ``max_len``), and
``seen="remove"`` removes every item of it, as RecBole's full-sort evaluation does. Counts,
similarities and weights come from the training sequences only, for both splits.

Tuning: for each baseline every grid point is scored on the validation users under the
requested protocol and the best validation NDCG@10 wins (ties: the earlier grid point);
the test numbers are then computed once with the chosen hyper-parameters. SASRec grid
points are trained once (:func:`.sasrec.train_sasrec_ce`, which keeps the best epoch of
each protocol) and saved in a models folder, so the four runs (valid/test x keep/remove)
share them.

``tie_order`` (``"file"``, the default, or ``"reversed"``): how a user's events with equal
timestamps are ordered before the split (:func:`eager_llm.data.leave_one_out`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from eager_llm.data import LeaveOneOut, check_tie_order, leave_one_out, load_dataset
from eager_llm.encoders import SASRec, SASRecConfig
from eager_llm.metrics import per_user_from_ranks

from .itemknn import ItemKNNConfig, item_overlap, item_similarity, itemknn_scores
from .markov import MarkovConfig, markov_scores, transition_counts
from .popular import popularity, popularity_scores
from .ranking import check_seen, target_ranks
from .sasrec import CETrainConfig, sasrec_scores, train_sasrec_ce

SPLITS = ("valid", "test")
KS = (5, 10, 20)
MARKOV_GRID = [
    MarkovConfig(last, decay, window, normalise)
    for last in (1, 2, 3, 5, 10, 20, 50)
    for decay in (1.0, 0.8, 0.6)
    for window in (1, 3, 10)
    for normalise in (False, True)
    if not (last == 1 and decay != 1.0)  # one recent item: the decay does nothing
]
ITEMKNN_GRID = [
    ItemKNNConfig(neighbours, shrink)
    for neighbours in (10, 20, 50, 100, 200, 500, None)
    for shrink in (0.0, 10.0, 100.0)
]
# SASRec: one factor at a time around a centre (2 blocks, 1 head, batch 128, <= 100 epochs,
# patience 10), at each history length; the training rows are a factor too (RecBole's
# every-prefix rows: ~max_len times the tokens of the default disjoint windows).
SASREC_LENGTHS = (50, 200)
SASREC_CENTRE = {"dim": 64, "dropout": 0.5, "lr": 1e-3}
SASREC_VARIANTS = ({}, {"dropout": 0.2}, {"dim": 128}, {"lr": 3e-3}, {"windows": "every-prefix"})
SASREC_EPOCHS, SASREC_PATIENCE = 100, 10


@dataclass(frozen=True)
class SASRecPoint:
    """One SASRec grid point; ``windows``: its training rows
    (:func:`eager_llm.encoders.behaviour.training_windows`)."""

    max_len: int
    dim: int
    dropout: float
    lr: float
    windows: str = "disjoint"

    @property
    def name(self) -> str:
        """``len50-d64-drop0.5-lr0.001``, plus ``-every-prefix`` for those rows."""
        rows = "" if self.windows == "disjoint" else f"-{self.windows}"
        return f"len{self.max_len}-d{self.dim}-drop{self.dropout:g}-lr{self.lr:g}{rows}"

    def configs(self, max_seconds: float | None = None) -> tuple[SASRecConfig, CETrainConfig]:
        model = SASRecConfig(dim=self.dim, max_len=self.max_len, dropout=self.dropout)
        train = CETrainConfig(
            lr=self.lr,
            epochs=SASREC_EPOCHS,
            patience=SASREC_PATIENCE,
            max_seconds=max_seconds,
            windows=self.windows,
        )
        return model, train


def sasrec_grid(lengths: Sequence[int] = SASREC_LENGTHS) -> list[SASRecPoint]:
    """The SASRec grid points at each history length."""
    return [
        SASRecPoint(max_len=length, **(SASREC_CENTRE | variant))
        for length in lengths
        for variant in SASREC_VARIANTS
    ]


@dataclass(frozen=True)
class Users:
    """One split's users: full-past ``histories``, ``targets``, and the ``loo`` split."""

    loo: LeaveOneOut
    n_items: int
    histories: list[list[int]]
    targets: list[int]


def load_split(dataset: str, split: str, *, tie_order: str = "file") -> Users:
    """The ``split`` users of ``dataset`` (the EAGER-LLM preprocessing, k-core 5; events with
    equal times in ``tie_order``)."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
    check_tie_order(tie_order)
    interactions, _ = load_dataset(dataset)
    longest = max(map(len, interactions.sequences()))
    loo = leave_one_out(interactions, max_history=longest, tie_order=tie_order)  # whole pasts
    examples = getattr(loo, split)
    return Users(
        loo,
        interactions.n_items,
        [list(e.history) for e in examples],
        [e.target for e in examples],
    )


def ranks_metrics(ranks: np.ndarray) -> dict[str, float]:
    """Mean Recall@k and NDCG@k (k in :data:`KS`) from 0-based ranks (-1: not ranked)."""
    ranks = np.where(np.asarray(ranks) < 0, np.inf, ranks).astype(np.float64)
    found = {}
    for k in KS:
        recall, ndcg = per_user_from_ranks(ranks, k)
        found[f"recall@{k}"] = float(recall.mean())
        found[f"ndcg@{k}"] = float(ndcg.mean())
    return found


def params_text(params: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in params.items()) or "-"


def _choose(
    grid: Sequence, scorer: Callable[[object, Users], np.ndarray], valid: Users, seen: str, tie
) -> tuple[object, list[dict], dict]:
    """The grid point with the best validation NDCG@10 (the first on ties), every point's
    validation Recall/NDCG@10, and the chosen point's."""
    table, best, chosen = [], None, {"ndcg@10": -1.0}
    for point in grid:
        ranks = target_ranks(scorer(point, valid), valid.targets, valid.histories, seen, tie)
        metrics = ranks_metrics(ranks)
        row = {"params": asdict(point), "recall@10": metrics["recall@10"],
               "ndcg@10": metrics["ndcg@10"]}  # fmt: skip
        table.append(row)
        if row["ndcg@10"] > chosen["ndcg@10"]:
            best, chosen = point, row
    return best, table, chosen


def sasrec_folder(models: Path, point: SASRecPoint) -> Path:
    return Path(models) / point.name


def train_sasrec_point(
    train: Sequence[np.ndarray],
    valid: Users,
    point: SASRecPoint,
    models: Path,
    log: Callable[[str], None] | None = None,
    max_seconds: float | None = None,
    *,
    tie_order: str = "file",
) -> dict:
    """Train one grid point (unless ``models/<name>/report.json`` exists) and save each
    protocol's best model in ``keep/`` and ``remove/``; returns the report. ``max_seconds``:
    a time box (:class:`~.sasrec.CETrainConfig`). ``tie_order`` is the split's, recorded in
    the report; a point trained on the other order is refused (``ValueError``). Training
    checkpoints every epoch in ``models/.<name>.epoch.pt``: a killed point goes on from
    there when trained again; the file goes once the report is written."""
    folder = sasrec_folder(models, point)
    done = folder / "report.json"
    if done.is_file():
        report = json.loads(done.read_text())
        if (trained := report.get("tie_order", "file")) != tie_order:
            raise ValueError(
                f"{done} was trained on the {trained!r} tie order, not {tie_order!r}; "
                "use another --models folder"
            )
        return report
    model_config, train_config = point.configs(max_seconds)
    order = "" if tie_order == "file" else f"-{tie_order}"
    checkpoint = Path(models) / f".{point.name}{order}.epoch.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    best, report = train_sasrec_ce(
        train, valid.histories, valid.targets, valid.n_items, model_config, train_config,
        log=log, checkpoint=checkpoint,
    )  # fmt: skip
    for seen, model in best.items():
        model.save(folder / seen)
    report = {"point": asdict(point), "threads": torch.get_num_threads(), **report}
    if tie_order != "file":  # the default stays implicit, as in the reports written before
        report["tie_order"] = tie_order
    done.write_text(json.dumps(report, indent=1))
    checkpoint.unlink(missing_ok=True)
    return report


def evaluate_baselines(
    dataset: str,
    split: str,
    seen: str,
    *,
    models: Path,
    sasrec_lengths: Sequence[int] = SASREC_LENGTHS,
    train_missing: bool = True,
    tie_order: str = "file",
    log: Callable[[str], None] = print,
) -> dict:
    """Every baseline chosen on the validation users under ``seen`` and scored on ``split``
    (events with equal times ordered by ``tie_order``): ``{"dataset", "split", "seen",
    "tie_order", "n_users", "n_items", "threads", "results": [{"method",
    "params", "valid_recall@10", "valid_ndcg@10", metrics..., "seconds", "ranks"}],
    "tuning": {method: grid table}}``; ``ranks`` are per-user 0-based target ranks over the
    whole catalogue."""
    check_seen(seen)
    valid = load_split(dataset, "valid", tie_order=tie_order)
    users = valid if split == "valid" else load_split(dataset, split, tie_order=tie_order)
    train = valid.loo.train
    tie = popularity(train, valid.n_items)
    results, tuning = [], {}

    def add(method: str, params: dict, chosen: dict, scores: np.ndarray, seconds: float):
        """A result row: ``chosen`` holds the grid point's validation Recall/NDCG@10."""
        ranks = target_ranks(scores, users.targets, users.histories, seen, tie)
        results.append({"method": method, "params": params,
                        "valid_recall@10": chosen["recall@10"], "valid_ndcg@10": chosen["ndcg@10"],
                        **ranks_metrics(ranks), "seconds": round(seconds, 2),
                        "ranks": ranks.tolist()})  # fmt: skip
        log(f"{method} {params_text(params)}: {split} Recall@10 {results[-1]['recall@10']:.4f}")

    started = time.perf_counter()
    valid_pop = popularity_scores(train, valid.n_items, len(valid.targets))
    chosen = ranks_metrics(target_ranks(valid_pop, valid.targets, valid.histories, seen, tie))
    pop = popularity_scores(train, users.n_items, len(users.targets))
    add("most popular", {}, chosen, pop, time.perf_counter() - started)

    started = time.perf_counter()
    counts = {
        w: transition_counts(train, valid.n_items, w) for w in {c.window for c in MARKOV_GRID}
    }
    point, table, chosen = _choose(
        MARKOV_GRID, lambda c, u: markov_scores(counts[c.window], u.histories, c), valid, seen, tie
    )
    tuning["Markov"] = table
    add("Markov (co-occurrence)", asdict(point), chosen,
        markov_scores(counts[point.window], users.histories, point),
        time.perf_counter() - started)  # fmt: skip

    started = time.perf_counter()
    similarities: dict = {}
    overlap = item_overlap(train, valid.n_items)

    def knn(config: ItemKNNConfig, u: Users) -> np.ndarray:
        if config not in similarities:
            similarities.clear()
            similarities[config] = item_similarity(train, valid.n_items, config, overlap)
        return itemknn_scores(similarities[config], u.histories)

    point, table, chosen = _choose(ITEMKNN_GRID, knn, valid, seen, tie)
    tuning["ItemKNN"] = table
    add("ItemKNN", asdict(point), chosen, knn(point, users), time.perf_counter() - started)

    for length in sasrec_lengths:
        started = time.perf_counter()
        table, best, chosen = [], None, {"ndcg@10": -1.0}
        for point in sasrec_grid([length]):
            folder = sasrec_folder(models, point)
            if not (folder / "report.json").is_file() and not train_missing:
                continue
            report = train_sasrec_point(train, valid, point, models, log, tie_order=tie_order)
            row = report["best"][seen]
            table.append({"params": asdict(point), "epoch": row["epoch"],
                          "recall@10": row["recall@10"], "ndcg@10": row["ndcg@10"],
                          "train_seconds": report["seconds"]})  # fmt: skip
            if row["ndcg@10"] > chosen["ndcg@10"]:
                best, chosen = point, row
        if best is None:
            log(f"SASRec-{length}: no trained model in {models}; skipped")
            continue
        tuning[f"SASRec-{length}"] = table
        model = SASRec.load(sasrec_folder(models, best) / seen)
        add(f"SASRec-{length} (CE)", asdict(best), chosen,
            sasrec_scores(model, users.histories), time.perf_counter() - started)  # fmt: skip
    return {
        "dataset": dataset,
        "split": split,
        "seen": seen,
        "tie_order": tie_order,
        "n_users": len(users.targets),
        "n_items": users.n_items,
        "threads": torch.get_num_threads(),
        "results": results,
        "tuning": tuning,
    }
