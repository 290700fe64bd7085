"""SASRec as a baseline: rankings of a saved model, and full-softmax training whose early
stopping watches validation NDCG@10 under both seen protocols at once.

:func:`train_sasrec_ce` is :func:`eager_llm.encoders.behaviour.train_sasrec` with the
catalogue-wide cross-entropy (:func:`~eager_llm.encoders.behaviour.full_softmax_loss`) on
the same windows (:func:`~eager_llm.encoders.behaviour.training_windows`, or RecBole's
every-prefix rows), except that after every epoch it ranks all validation users with
history items kept and removed and keeps the best weights of each protocol; it stops when
neither improved for ``patience`` epochs. One training so serves both protocols.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from eager_llm.encoders import SASRec, SASRecConfig
from eager_llm.encoders.behaviour import (
    full_softmax_loss,
    load_training_state,
    save_training_state,
    training_windows,
)
from eager_llm.metrics import per_user_from_ranks

from .ranking import SEEN, check_seen, target_ranks, top_k


def sasrec_rankings(
    folder: str | Path,
    histories: Sequence[Sequence[int]],
    k: int,
    batch_size: int = 1024,
    *,
    seen: str = "keep",
) -> list[list[int]]:
    """Top-``k`` items (all items when fewer) of the SASRec saved in ``folder`` for each
    history (item indices, oldest first); ``seen="remove"`` leaves the history items out."""
    check_seen(seen)
    model = SASRec.load(folder)
    k = min(k, model.num_items)
    ranked: list[list[int]] = []
    for start in range(0, len(histories), batch_size):
        batch = histories[start : start + batch_size]
        ranked += top_k(model.score(batch), k, batch, seen)
    return ranked


def sasrec_scores(
    model: SASRec, histories: Sequence[Sequence[int]], batch_size: int = 512
) -> np.ndarray:
    """(len(histories), num_items) float32 scores (the last ``max_len`` items of each)."""
    parts = [
        model.score(histories[start : start + batch_size]).numpy()
        for start in range(0, len(histories), batch_size)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, model.num_items), np.float32)


@dataclass(frozen=True)
class CETrainConfig:
    """Optimisation of :func:`train_sasrec_ce`: Adam, ``epochs`` at most, early stopping
    after ``patience`` epochs without a better validation NDCG@10 under either protocol, or
    after the first epoch that ends past ``max_seconds`` of training (a time box; the
    report says which stopped it). ``windows``: how training sequences become rows
    (:func:`~eager_llm.encoders.behaviour.training_windows`; ``every-prefix`` is RecBole's)."""

    lr: float = 1e-3
    epochs: int = 200
    patience: int = 10
    batch_size: int = 128
    weight_decay: float = 0.0
    seed: int = 0
    max_seconds: float | None = None
    windows: str = "disjoint"


def validation_metrics(
    model: SASRec, histories: Sequence[Sequence[int]], targets: Sequence[int]
) -> dict[str, dict[str, float]]:
    """Protocol -> Recall@10 and NDCG@10 of ``model`` over all the given users."""
    scores = sasrec_scores(model, histories)
    found = {}
    for seen in SEEN:
        ranks = target_ranks(scores, targets, histories, seen).astype(np.float64)
        recall, ndcg = per_user_from_ranks(np.where(ranks < 0, np.inf, ranks), 10)
        found[seen] = {"recall@10": float(recall.mean()), "ndcg@10": float(ndcg.mean())}
    return found


def train_sasrec_ce(
    train: Sequence[np.ndarray],
    valid_histories: Sequence[Sequence[int]],
    valid_targets: Sequence[int],
    num_items: int,
    config: SASRecConfig = SASRecConfig(),
    train_config: CETrainConfig = CETrainConfig(),
    *,
    log=None,
    checkpoint: Path | None = None,
) -> tuple[dict[str, SASRec], dict]:
    """Train SASRec on the windows of ``train`` (module docstring). Returns protocol -> the
    model (eval mode) of its best validation epoch, and a report: the configs, per-epoch
    loss, validation metrics and seconds, and each protocol's best epoch and metrics.
    ``log`` (a callable taking a line) hears one line per epoch. ``checkpoint``: a file
    written atomically after every epoch; when it exists training goes on after its epoch
    and ends as an uninterrupted run would (the seconds and the time box count the earlier
    sessions' training too)."""
    if train_config.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {train_config.epochs}")
    torch.manual_seed(train_config.seed)
    generator = torch.Generator().manual_seed(train_config.seed)
    inputs, labels = map(
        torch.from_numpy, training_windows(train, config.max_len, train_config.windows)
    )
    model = SASRec(num_items, config)
    optimiser = torch.optim.Adam(
        model.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay
    )
    best = {seen: {"epoch": 0, "ndcg@10": -1.0} for seen in SEEN}
    states: dict[str, dict] = {}
    history = []
    started = time.perf_counter()
    stopped = "epochs"
    done, records = load_training_state(checkpoint, model, optimiser, generator)
    if records is not None:
        history, best, states = records["history"], records["best"], records["states"]
        started -= history[-1]["seconds"]
    for epoch in range(done + 1, train_config.epochs + 1):
        model.train()
        total = 0.0
        for batch in torch.randperm(len(inputs), generator=generator).split(
            train_config.batch_size
        ):
            loss = full_softmax_loss(model, model(inputs[batch]), labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        model.eval()
        valid = validation_metrics(model, valid_histories, valid_targets)
        record = {"epoch": epoch, "loss": total / len(inputs), "valid": valid,
                  "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
        history.append(record)
        for seen in SEEN:
            if valid[seen]["ndcg@10"] > best[seen]["ndcg@10"]:
                best[seen] = {"epoch": epoch, **valid[seen]}
                states[seen] = copy.deepcopy(model.state_dict())
        if log is not None:
            shown = " ".join(
                f"{seen}: R@10 {valid[seen]['recall@10']:.4f} N@10 {valid[seen]['ndcg@10']:.4f}"
                for seen in SEEN
            )
            log(f"epoch {epoch} loss {record['loss']:.4f} {shown} ({record['seconds']} s)")
        if all(epoch - best[seen]["epoch"] >= train_config.patience for seen in SEEN):
            stopped = "patience"
            break
        elapsed = time.perf_counter() - started
        if train_config.max_seconds is not None and elapsed > train_config.max_seconds:
            stopped = "time"
            break
        if checkpoint is not None and epoch < train_config.epochs:
            records = {"history": history, "best": best, "states": states}
            save_training_state(checkpoint, epoch, model, optimiser, generator, records)
    models = {}
    for seen in SEEN:
        models[seen] = SASRec(num_items, config)
        models[seen].load_state_dict(states[seen])
        models[seen].eval()
    report = {
        "model": asdict(config),
        "train": asdict(train_config),
        "history": history,
        "best": best,
        "stopped": stopped,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return models, report
