"""Behaviour encoder: SASRec (Kang & McAuley, 2018) trained on the training sequences.

Choice: the public EAGER-LLM code trains a DIN (1024-d, sampled softmax) to get behaviour
embeddings. We use SASRec instead: it is the standard sequential-recommendation baseline,
so one model gives both the behaviour item embeddings of the DKI index and the SASRec
baseline of the evaluation. Differences from the original SASRec: cross-entropy over the
whole catalogue (or, optionally, a sampled softmax over many shared negatives) instead of
binary cross-entropy with one sampled negative, which is stronger and cheap for catalogues of
a few thousand items; pre-norm blocks; embeddings shared between input and output.

Item ``i`` of the :class:`~eager_llm.data.Interactions` is token ``i + 1``; token 0 is
padding. Sequences are left-padded, so the most recent item is always the last position and
positions are learned per slot. Training labels come only from ``LeaveOneOut.train``
(see :func:`training_windows`); validation targets are used only for early stopping.

Ranking is over the whole catalogue (the padding token is never a candidate). Items of the
history are not masked by default, as in standard leave-one-out full ranking;
``mask_history=True`` removes them.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from eager_llm.data import Example, LeaveOneOut
from eager_llm.metrics import metrics_from_ranks, score_ranks

PAD = 0  # padding token
IGNORE = -100  # label of padded positions (the cross-entropy default ignore_index)
INIT_STD = 0.02  # embedding initialisation (BERT / RecBole)


@dataclass(frozen=True)
class SASRecConfig:
    """Architecture of :class:`SASRec` (the catalogue size is given separately)."""

    dim: int = 64
    num_blocks: int = 2
    num_heads: int = 1
    max_len: int = 20  # = the EAGER-LLM history length
    dropout: float = 0.2


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation of :func:`train_sasrec`. ``patience`` (in epochs) enables early
    stopping on validation NDCG@10; the best epoch's weights are kept. ``negatives`` None
    trains with the full softmax over the catalogue; a number trains with a sampled softmax
    over that many uniformly drawn items shared by the batch (faster on large catalogues).
    """

    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int | None = 5
    negatives: int | None = None
    seed: int = 0


class Block(nn.Module):
    """Pre-norm transformer block: causal self-attention then a position-wise MLP."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
        """``x`` (B, T, d); ``blocked`` (B * heads, T, T) True where attention is forbidden."""
        h = self.attention_norm(x)
        x = x + self.dropout(self.attention(h, h, h, attn_mask=blocked, need_weights=False)[0])
        return x + self.dropout(self.mlp(self.mlp_norm(x)))


class SASRec(nn.Module):
    """Self-attentive sequential recommender; scores are dot products with item embeddings."""

    def __init__(self, num_items: int, config: SASRecConfig = SASRecConfig()) -> None:
        super().__init__()
        self.num_items = num_items
        self.config = config
        self.items = nn.Embedding(num_items + 1, config.dim, padding_idx=PAD)
        self.positions = nn.Embedding(config.max_len, config.dim)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(config.dim, config.num_heads, config.dropout) for _ in range(config.num_blocks)
        )
        self.norm = nn.LayerNorm(config.dim)
        for embedding in (self.items, self.positions):
            nn.init.normal_(embedding.weight, std=INIT_STD)
        with torch.no_grad():
            self.items.weight[PAD].zero_()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Hidden state after each position: ``tokens`` (B, T) -> (B, T, d), T <= max_len."""
        _, length = tokens.shape
        is_pad = tokens == PAD
        x = self.items(tokens) + self.positions.weight[-length:]
        x = self.dropout(x) * ~is_pad[..., None]
        blocked = attention_mask(is_pad).repeat_interleave(self.config.num_heads, dim=0)
        for block in self.blocks:
            x = block(x, blocked) * ~is_pad[..., None]
        return self.norm(x)

    def item_embeddings(self) -> torch.Tensor:
        """(num_items, d) output embedding of each item (row = item index)."""
        return self.items.weight[1:]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores of every item: ``hidden`` (..., d) -> (..., num_items)."""
        return hidden @ self.item_embeddings().T

    @torch.no_grad()
    def score(
        self, histories: Sequence[Sequence[int]], *, mask_history: bool = False
    ) -> torch.Tensor:
        """(B, num_items) next-item scores for item-index ``histories`` (oldest first; the last
        ``max_len`` items are used). ``mask_history`` sets history items to ``-inf``."""
        self.eval()
        tokens = pad_left([np.asarray(h) + 1 for h in histories], self.config.max_len)
        scores = self.logits(self(torch.from_numpy(tokens))[:, -1])
        if mask_history:
            for row, history in enumerate(histories):
                scores[row, list(history)] = -torch.inf
        return scores

    def recommend(
        self, histories: Sequence[Sequence[int]], k: int, *, mask_history: bool = False
    ) -> torch.Tensor:
        """(B, k) item indices of the top-``k`` scores, best first."""
        return self.score(histories, mask_history=mask_history).topk(k).indices

    def save(self, folder: str | Path) -> None:
        """Write ``model.pt`` (state dict) and ``config.json`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), folder / "model.pt")
        config = {"num_items": self.num_items, **asdict(self.config)}
        (folder / "config.json").write_text(json.dumps(config, indent=1))

    @classmethod
    def load(cls, folder: str | Path) -> SASRec:
        """The model written by :meth:`save`, in eval mode."""
        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        model = cls(config.pop("num_items"), SASRecConfig(**config))
        model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
        return model.eval()


def attention_mask(is_pad: torch.Tensor) -> torch.Tensor:
    """(B, T) padding flags -> (B, T, T) True where query t may NOT attend to key s: keys in
    the future or padding. Every position may attend to itself, so no row is fully blocked."""
    length = is_pad.shape[1]
    future = torch.ones(length, length, dtype=torch.bool).triu(1)
    self_only = torch.eye(length, dtype=torch.bool)
    return (future | is_pad[:, None, :]) & ~self_only


def pad_left(sequences: Sequence[np.ndarray], length: int) -> np.ndarray:
    """(len(sequences), length) int64: the last ``length`` entries of each, left-padded."""
    out = np.full((len(sequences), length), PAD, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        tail = sequence[-length:]
        if len(tail):
            out[row, length - len(tail) :] = tail
    return out


WINDOWS = ("disjoint", "every-prefix")


def training_windows(
    train: Sequence[np.ndarray], max_len: int, windows: str = "disjoint"
) -> tuple[np.ndarray, np.ndarray]:
    """Cut each training sequence into next-item training rows.

    ``disjoint`` (the default): non-overlapping windows, newest first; position t of a window
    holds input ``s[j]`` and label ``s[j + 1]``, so every item of ``s`` after the first is a
    label exactly once, seen with 0 to ``max_len - 1`` items before it. ``every-prefix``
    (RecBole's sequential datasets): one row per label ``s[j]``, its input the ``max_len``
    items before it and its label on the last position only, so every label is seen with
    its whole history (up to ``max_len``) at ``~max_len`` times the rows' tokens. Either way
    nothing outside ``s`` is ever a label. Returns ``inputs`` (W, max_len) tokens (item + 1,
    0 = padding) and ``labels`` (W, max_len) item indices (-100 = no label).
    """
    if windows not in WINDOWS:
        raise ValueError(f"windows must be one of {WINDOWS}, got {windows!r}")
    inputs, labels = [], []
    for sequence in train:
        if windows == "disjoint":
            for end in range(len(sequence) - 1, 0, -max_len):
                start = max(0, end - max_len)
                inputs.append(sequence[start:end] + 1)
                labels.append(sequence[start + 1 : end + 1] + 1)
            continue
        for end in range(1, len(sequence)):
            history = sequence[max(0, end - max_len) : end]
            inputs.append(history + 1)
            labels.append(np.append(np.full(len(history) - 1, PAD), sequence[end] + 1))
    if not inputs:
        raise ValueError("no training sequence has two items: nothing to learn from")
    label_tokens = pad_left(labels, max_len)
    return pad_left(inputs, max_len), np.where(label_tokens == PAD, IGNORE, label_tokens - 1)


def evaluate(
    model: SASRec,
    examples: Sequence[Example],
    *,
    k: int = 10,
    batch_size: int = 1024,
    mask_history: bool = False,
) -> dict[str, float]:
    """Full-ranking Recall@k and NDCG@k of ``model`` on leave-one-out ``examples``."""
    rank = np.concatenate(
        [
            score_ranks(
                model.score([e.history for e in batch], mask_history=mask_history),
                [e.target for e in batch],
            )
            for batch in (examples[i : i + batch_size] for i in range(0, len(examples), batch_size))
        ]
    )
    return metrics_from_ranks(rank, k)


def full_softmax_loss(model: SASRec, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over all items: ``hidden`` (B, T, d), ``labels`` (B, T) -> scalar, the
    mean over labelled positions (only those are scored against the catalogue)."""
    keep = labels != IGNORE
    return F.cross_entropy(model.logits(hidden[keep]), labels[keep])


def sampled_softmax_loss(
    model: SASRec, hidden: torch.Tensor, labels: torch.Tensor, negatives: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy over the label and ``negatives`` (S,) shared item indices; a negative
    equal to the label is masked out. ``hidden`` (B, T, d), ``labels`` (B, T) -> scalar."""
    keep = labels != IGNORE
    hidden, labels = hidden[keep], labels[keep]
    items = model.item_embeddings()
    positive = (hidden * items[labels]).sum(-1, keepdim=True)
    negative = (hidden @ items[negatives].T).masked_fill(labels[:, None] == negatives, -torch.inf)
    logits = torch.cat([positive, negative], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(labels), dtype=torch.long))


def save_training_state(
    path: str | Path, epoch: int, model, optimiser, generator: torch.Generator, records: dict
) -> None:
    """A training loop's state after ``epoch``: weights, optimizer, the shuffling generator's
    and torch's global (dropout) random states, and the loop's own ``records`` (history,
    best so far); written atomically, so a kill leaves the previous epoch's file whole."""
    state = {"epoch": epoch, "model": model.state_dict(), "optimiser": optimiser.state_dict(),
             "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
             "records": records}  # fmt: skip
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    torch.save(state, partial)
    os.replace(partial, path)


def load_training_state(
    path: str | Path | None, model, optimiser, generator: torch.Generator
) -> tuple[int, dict | None]:
    """Restore what :func:`save_training_state` wrote into ``model``, ``optimiser`` and the
    random states; returns ``(epoch, records)``, or ``(0, None)`` when there is no file."""
    if path is None or not Path(path).is_file():
        return 0, None
    saved = torch.load(path, weights_only=False)
    model.load_state_dict(saved["model"])
    optimiser.load_state_dict(saved["optimiser"])
    generator.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])
    return saved["epoch"], saved["records"]


def train_sasrec(
    split: LeaveOneOut,
    num_items: int,
    config: SASRecConfig = SASRecConfig(),
    train_config: TrainConfig = TrainConfig(),
    *,
    progress: bool = True,
    checkpoint: Path | None = None,
) -> tuple[SASRec, dict]:
    """Train SASRec on the windows of ``split.train`` (:func:`training_windows`) with
    next-item cross-entropy (full or sampled softmax, see :class:`TrainConfig`).

    With ``train_config.patience`` set, validation NDCG@10 is measured after every epoch and
    training stops after ``patience`` epochs without improvement; the best weights are
    returned. Returns the model (eval mode) and a report: per-epoch loss and validation
    metrics, the best epoch and its validation Recall@10/NDCG@10.

    ``checkpoint``: a file written atomically after every epoch (weights, optimizer, both
    random states, the history and the best weights so far); when it exists, training
    continues after its epoch and ends as an uninterrupted run would (bit for bit). The
    caller keys the file to the data and configs; it is not removed here.
    """
    if train_config.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {train_config.epochs}")
    torch.manual_seed(train_config.seed)
    generator = torch.Generator().manual_seed(train_config.seed)
    inputs, labels = map(torch.from_numpy, training_windows(split.train, config.max_len))
    model = SASRec(num_items, config)
    optimiser = torch.optim.Adam(
        model.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay
    )
    history: list[dict[str, float]] = []
    best = {"epoch": 0, "ndcg@10": -1.0}
    best_state = None
    done, records = load_training_state(checkpoint, model, optimiser, generator)
    if records is not None:
        history, best, best_state = records["history"], records["best"], records["best_state"]
    bar = tqdm(range(done + 1, train_config.epochs + 1), desc="SASRec", disable=not progress,
               initial=done, total=train_config.epochs)  # fmt: skip
    for epoch in bar:
        model.train()
        total = 0.0
        for batch in torch.randperm(len(inputs), generator=generator).split(
            train_config.batch_size
        ):
            hidden = model(inputs[batch])
            if train_config.negatives is None:
                loss = full_softmax_loss(model, hidden, labels[batch])
            else:
                sampled = torch.randint(num_items, (train_config.negatives,), generator=generator)
                loss = sampled_softmax_loss(model, hidden, labels[batch], sampled)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        record = {"epoch": epoch, "loss": total / len(inputs)}
        if train_config.patience is not None:
            record |= evaluate(model, split.valid)
            if record["ndcg@10"] > best["ndcg@10"]:
                best, best_state = dict(record), copy.deepcopy(model.state_dict())
        history.append(record)
        bar.set_postfix({key: f"{value:.4f}" for key, value in record.items() if key != "epoch"})
        stop = train_config.patience is not None and epoch - best["epoch"] >= train_config.patience
        if checkpoint is not None and not stop and epoch < train_config.epochs:
            records = {"history": history, "best": best, "best_state": best_state}
            save_training_state(checkpoint, epoch, model, optimiser, generator, records)
        if stop:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    valid = evaluate(model, split.valid)
    return model, {"history": history, "best_epoch": best["epoch"] or epoch, "valid": valid}
