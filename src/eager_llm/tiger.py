"""TIGER (Rajput et al., 2023): an encoder-decoder transformer trained from scratch on
semantic-ID sequences, decoding the next item's ID by trie-constrained beam search.

A real baseline for EAGER-LLM: no pretrained language model, only the item index. The
encoder reads the history's codes (each item's tokens, oldest first, then EOS); the decoder
writes the target item's codes. Vocabulary: 0 pad (also the decoder start), 1 EOS, then one
id per (level, value) of the index. The model is a transformers ``T5ForConditionalGeneration``
of a few million parameters (TIGER: 4 + 4 layers, 6 heads of 64, d_model 128, MLP 1024,
dropout 0.1). Training: every next-item example inside the training sequences, AdamW with
linear warm-up, validation Recall@10 on a fixed user sample after every epoch, stopping when
it has not improved for ``patience`` epochs; the best epoch's weights are kept
(``best_epoch`` in ``tiger.json``), and every epoch is checkpointed for an exact resume.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList, T5Config, T5ForConditionalGeneration

from eager_llm.decoding import _HF_SENTINEL_SCORE, BEAM_SCORES
from eager_llm.metrics import evaluate_rankings

PAD, EOS, FIRST_CODE = 0, 1, 2
STATE = "tiger.json"
CHECKPOINT = "checkpoint.pt"
RESUMABLE_CHANGES = ("epochs", "patience")  # a resume may train longer or stop otherwise


@dataclass(frozen=True)
class TigerConfig:
    d_model: int = 128
    d_ff: int = 1024
    layers: int = 4
    heads: int = 6
    d_kv: int = 64
    dropout: float = 0.1
    max_history: int = 20
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    seed: int = 0
    patience: int = 3  # epochs without a better validation Recall@10 before stopping


class CodeVocabulary:
    """Item positions <-> T5 token ids of their index codes (``item_index`` tokens)."""

    def __init__(self, item_index: Mapping[str, Sequence[str]], item_ids: Sequence[str]):
        tokens = sorted({t for index in item_index.values() for t in index})
        self.token_id = {t: FIRST_CODE + n for n, t in enumerate(tokens)}
        self.size = FIRST_CODE + len(tokens)
        self.codes = [[self.token_id[t] for t in item_index[i]] for i in item_ids]  # (n_items, L)
        lengths = {len(c) for c in self.codes}
        if len(lengths) != 1:
            raise ValueError(f"TIGER needs codes of one length, got lengths {sorted(lengths)}")
        self.length = lengths.pop()
        self.item_of = {tuple(c): n for n, c in enumerate(self.codes)}
        self.items_below = Counter(
            tuple(c[:d]) for c in self.codes for d in range(1, self.length + 1)
        )

    def encode(self, history: Sequence[int], max_history: int) -> list[int]:
        return [t for item in history[-max_history:] for t in self.codes[item]] + [EOS]

    def allowed(self, prefix: Sequence[int]) -> list[int]:
        """Code ids that continue ``prefix`` (decoded codes so far) towards some item."""
        depth = len(prefix)
        return sorted({c[depth] for c in self.codes if c[:depth] == list(prefix)})

    def exhausted_prefixes(self, items: Collection[int]) -> set[tuple[int, ...]]:
        """Code prefixes (one to ``length`` codes) all of whose items are in ``items`` (item
        positions): a search that must not return ``items`` never extends into them."""
        covered = Counter(tuple(self.codes[i][:d]) for i in set(items)
                          for d in range(1, self.length + 1))  # fmt: skip
        return {prefix for prefix, n in covered.items() if n == self.items_below[prefix]}


def build_model(config: TigerConfig, vocabulary_size: int) -> T5ForConditionalGeneration:
    torch.manual_seed(config.seed)
    t5 = T5Config(
        vocab_size=vocabulary_size,
        d_model=config.d_model,
        d_ff=config.d_ff,
        d_kv=config.d_kv,
        num_layers=config.layers,
        num_decoder_layers=config.layers,
        num_heads=config.heads,
        dropout_rate=config.dropout,
        pad_token_id=PAD,
        eos_token_id=EOS,
        decoder_start_token_id=PAD,
    )
    return T5ForConditionalGeneration(t5)


def _pad(rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), PAD, dtype=torch.long)
    for n, r in enumerate(rows):
        ids[n, : len(r)] = torch.tensor(r)
    return ids, (ids != PAD).long()


class CodeTrieProcessor(LogitsProcessor):
    """Constrains ``generate``'s beam search to the code trie, per user: a beam may only
    continue its codes towards an item its user may get (else -inf).

    The search never enters a prefix all of whose items are excluded for the user
    (:meth:`CodeVocabulary.exhausted_prefixes`; the exact pruning of
    :mod:`eager_llm.decoding`), so no beam is spent on them. ``exclude``: per user of the
    batch, item positions never to return (None: none); ``beam_scores``: the log-probs
    ``generate`` passes in are over the whole vocabulary (``vocabulary``) or are
    renormalised over the allowed codes (``allowed``).
    """

    def __init__(
        self,
        vocabulary: CodeVocabulary,
        num_beams: int,
        exclude: Sequence[Collection[int]] | None,
        beam_scores: str,
    ):
        self.vocabulary = vocabulary
        self.num_beams = num_beams
        self.beam_scores = beam_scores
        self.pruned = [vocabulary.exhausted_prefixes(items) for items in exclude or []]
        self.memo: dict[tuple[int, ...], list[int]] = {}

    def allowed(self, user: int, prefix: tuple[int, ...]) -> list[int]:
        """Code ids that may follow the decoded codes ``prefix`` of ``user``'s beam."""
        if prefix not in self.memo:
            self.memo[prefix] = self.vocabulary.allowed(prefix)
        if not self.pruned:
            return self.memo[prefix]
        return [c for c in self.memo[prefix] if (*prefix, c) not in self.pruned[user]]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """input_ids: (batch * num_beams, 1 + decoded), rows grouped by user; scores:
        log-probs (batch * num_beams, vocab). A beam with no allowed token (a filler of a
        user with fewer items left than beams) gets -inf everywhere."""
        mask = torch.full_like(scores, -torch.inf)
        for row, decoded in enumerate(input_ids[:, 1:].tolist()):  # drop the decoder start
            mask[row, self.allowed(row // self.num_beams, tuple(decoded))] = 0
        masked = scores + mask
        if self.beam_scores == "vocabulary":
            return masked
        some = mask.amax(-1, keepdim=True) == 0
        return torch.where(some, masked.log_softmax(-1), masked)


@torch.no_grad()
def rank(
    model,
    vocabulary: CodeVocabulary,
    histories,
    k: int,
    max_history: int,
    batch_size: int = 32,
    *,
    exclude: Sequence[Collection[int]] | None = None,
    beam_scores: str = "vocabulary",
) -> list[list[int]]:
    """Top-``k`` item positions per history by trie-constrained beam search (k beams).

    ``exclude``: per history, item positions never returned (pruned from that user's trie:
    :class:`CodeTrieProcessor`), so each list holds ``min(k, items not excluded)`` items;
    ``beam_scores``: one of :data:`eager_llm.decoding.BEAM_SCORES`.
    """
    if beam_scores not in BEAM_SCORES:
        raise ValueError(
            f"beam_scores must be one of {', '.join(BEAM_SCORES)}, got {beam_scores!r}"
        )
    if exclude is not None and len(exclude) != len(histories):
        raise ValueError(f"{len(exclude)} exclusion sets for {len(histories)} histories")
    model.eval()
    ranked = []
    for start in range(0, len(histories), batch_size):
        chunk = histories[start : start + batch_size]
        excluded = None if exclude is None else exclude[start : start + batch_size]
        trie = CodeTrieProcessor(vocabulary, k, excluded, beam_scores)
        ids, mask = _pad([vocabulary.encode(h, max_history) for h in chunk])
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            num_beams=k,
            num_return_sequences=k,
            max_new_tokens=vocabulary.length,  # the codes alone: TIGER never learnt an EOS
            logits_processor=LogitsProcessorList([trie]),
            length_penalty=0.0,
            do_sample=False,
            early_stopping=True,
            output_scores=True,
            return_dict_in_generate=True,
        )
        codes = out.sequences[:, 1 : 1 + vocabulary.length].view(len(chunk), k, -1).tolist()
        scores = out.sequences_scores.view(len(chunk), k).tolist()
        ranked += [
            [
                vocabulary.item_of[tuple(seq)]
                for seq, score in zip(beams, user_scores, strict=True)
                if score > _HF_SENTINEL_SCORE
            ]  # fmt: skip
            for beams, user_scores in zip(codes, scores, strict=True)
        ]
    return ranked


def train(
    split,
    item_index,
    item_ids,
    config: TigerConfig,
    valid_examples,
    out: Path,
    progress=print,
    resume: bool = False,
) -> dict:
    """Train on ``split.train_examples()``; validate on ``valid_examples`` after each epoch
    and stop once validation Recall@10 has not improved for ``config.patience`` epochs (or
    after ``config.epochs``); save the best epoch's model and ``tiger.json`` (config,
    per-epoch curve) into ``out``.

    After every epoch ``out/checkpoint.pt`` (weights, optimizer, schedule, curve, best
    weights) is replaced atomically; ``resume`` continues from it. Each epoch draws its
    example order and dropout from ``(seed, epoch)`` alone, so a resumed run trains exactly
    as an uninterrupted one; a finished run resumed returns its summary at once."""
    vocabulary = CodeVocabulary(item_index, item_ids)
    model = build_model(config, vocabulary.size)
    examples = list(split.train_examples())
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / config.warmup_steps)
    )
    targets = [e.target for e in valid_examples]
    histories = [list(e.history) for e in valid_examples]
    run = TrainingState(curve=[], best_state=None, elapsed=0.0)
    checkpoint = out / CHECKPOINT
    if resume and checkpoint.exists():
        run = load_checkpoint(checkpoint, config, model, optimizer, scheduler)
        progress(f"resumed after epoch {len(run.curve)}")
    started = time.perf_counter() - run.elapsed
    while not run.finished(config):
        epoch = len(run.curve) + 1
        loss = train_epoch(model, optimizer, scheduler, examples, vocabulary, config, epoch)
        ranked = rank(model, vocabulary, histories, 10, config.max_history)
        metrics = evaluate_rankings(ranked, targets, ks=(10,))
        point = {
            "epoch": epoch,
            "samples": epoch * len(examples),
            "loss": round(loss, 4),
            "valid_recall@10": metrics["recall@10"],
            "valid_ndcg@10": metrics["ndcg@10"],
            "seconds": round(time.perf_counter() - started, 1),
        }
        if run.best_state is None or point["valid_recall@10"] > run.best()["valid_recall@10"]:
            run.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        run.curve.append(point)
        run.elapsed = time.perf_counter() - started
        save_checkpoint(checkpoint, config, model, optimizer, scheduler, run)
        progress(json.dumps(point))
    model.load_state_dict(run.best_state)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    (out / "item_index.json").write_text(json.dumps(dict(item_index)))
    summary = {
        "config": asdict(config),
        "train_examples": len(examples),
        "valid_users": len(valid_examples),
        "parameters": sum(p.numel() for p in model.parameters()),
        "best_epoch": run.best()["epoch"],
        "stopped": "patience" if len(run.curve) < config.epochs else "epochs",
        "curve": run.curve,
    }
    (out / STATE).write_text(json.dumps(summary, indent=1))
    return summary


def train_epoch(model, optimizer, scheduler, examples, vocabulary, config, epoch: int) -> float:
    """One pass over ``examples`` in the order of ``(seed, epoch)``, dropout seeded alike;
    returns the mean loss."""
    order = np.random.default_rng([config.seed, epoch]).permutation(len(examples))
    torch.manual_seed(config.seed * 1_000_003 + epoch)
    model.train()
    losses = []
    for start in range(0, len(order), config.batch_size):
        batch = [examples[i] for i in order[start : start + config.batch_size]]
        ids, mask = _pad([vocabulary.encode(e.history, config.max_history) for e in batch])
        labels = torch.tensor([vocabulary.codes[e.target] for e in batch])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return float(np.mean(losses))


@dataclass
class TrainingState:
    """What a resume needs besides the model, optimizer and schedule: the per-epoch
    ``curve``, the best epoch's weights and the seconds trained so far."""

    curve: list[dict]
    best_state: dict[str, torch.Tensor] | None
    elapsed: float

    def best(self) -> dict:
        """The curve's point of the highest validation Recall@10 (the earliest on ties)."""
        return max(self.curve, key=lambda point: point["valid_recall@10"])

    def finished(self, config: TigerConfig) -> bool:
        """``config.epochs`` done, or ``config.patience`` epochs since the best one."""
        done = len(self.curve)
        return done >= config.epochs or (
            done > 0 and done - self.best()["epoch"] >= config.patience
        )


def save_checkpoint(path: Path, config, model, optimizer, scheduler, run: TrainingState) -> None:
    """Write ``path`` whole or not at all (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    state = {
        "config": asdict(config),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "run": asdict(run),
    }
    torch.save(state, temporary)
    os.replace(temporary, path)


def load_checkpoint(path: Path, config, model, optimizer, scheduler) -> TrainingState:
    """Restore ``model``, ``optimizer`` and ``scheduler`` from ``path``; raises
    ``ValueError`` when the checkpoint was written with other settings."""
    state = torch.load(path, weights_only=True)
    differing = {
        key: (value, asdict(config)[key])
        for key, value in state["config"].items()
        if asdict(config).get(key) != value and key not in RESUMABLE_CHANGES
    }
    if differing:
        changes = ", ".join(f"{key} {old} -> {new}" for key, (old, new) in differing.items())
        raise ValueError(f"{path}: written with other settings ({changes}): resume with them")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return TrainingState(**state["run"])


def tiger_rankings(
    folder, item_ids, histories, k: int, *, exclude=None, beam_scores: str = "vocabulary"
) -> list[list[int]]:
    """Top-``k`` item positions per history from a trained TIGER folder (``exclude``,
    ``beam_scores``: :func:`rank`)."""
    folder = Path(folder)
    summary = json.loads((folder / STATE).read_text())
    item_index = json.loads((folder / "item_index.json").read_text())
    model = T5ForConditionalGeneration.from_pretrained(folder)
    vocabulary = CodeVocabulary(item_index, item_ids)
    max_history = summary["config"]["max_history"]
    return rank(
        model, vocabulary, histories, k, max_history, exclude=exclude, beam_scores=beam_scores
    )
