"""Ranking validation during training: Recall@10 / NDCG@10 of trie beam search on a fixed
sample of validation users, the numbers that ``load_best_model_at_end`` selects on.

The sample (``valid_users`` users drawn once with the run's seed) and the two baselines on
the same users (most-popular from the training sequences; the index folder's SASRec) are
fixed when the run starts, so every point of the learning curve ranks the same examples.
Under the ``seen: remove`` protocol (config ``valid_seen``) no method returns an item of the
user's training sequence, as ``eager-llm eval --seen remove`` on the test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from eager_llm.baselines import markov_rankings, most_popular, sasrec_rankings
from eager_llm.data import Example
from eager_llm.decoding import ItemTrie, recommend
from eager_llm.metrics import evaluate_rankings, list_ranks
from eager_llm.tasks import history_prompts

KS = (10,)


def sample_users(examples: list[Example], n: int, seed: int) -> list[Example]:
    """``n`` examples drawn without replacement (all when fewer), in user order."""
    if n >= len(examples):
        return list(examples)
    chosen = np.random.default_rng(seed).choice(len(examples), size=n, replace=False)
    return [examples[i] for i in sorted(chosen.tolist())]


@dataclass
class RankingValidation:
    """Callable ``(lm, tokenizer) -> {"recall@10", "ndcg@10"}`` on fixed examples.

    ``prompts``/``targets``: one per user; ``item_ids``: position -> item id; ``beams``
    decoded per user (>= 10), ``batch_size`` users at a time; ``exclude``: per user, item
    ids never returned (None: none); ``beam_scores``: :data:`eager_llm.decoding.BEAM_SCORES`.
    """

    prompts: list[str]
    targets: list[int]
    item_index: dict[str, list[str]]
    item_ids: list[str]
    beams: int = 10
    batch_size: int = 16
    exclude: list[list[str]] | None = None
    beam_scores: str = "vocabulary"

    @classmethod
    def build(
        cls,
        examples,
        item_index,
        item_ids,
        max_history,
        template,
        *,
        seen_items: Sequence[Sequence[int]] | None = None,
        **kwargs,
    ):
        """From ``examples``; ``seen_items``: per example, item positions to exclude."""
        indices = ["".join(item_index[item_id]) for item_id in item_ids]
        histories = [e.history for e in examples]
        prompts = history_prompts(indices, histories, max_history, template)
        exclude = None
        if seen_items is not None:
            exclude = [[item_ids[i] for i in items] for items in seen_items]
        targets = [e.target for e in examples]
        return cls(prompts, targets, item_index, item_ids, exclude=exclude, **kwargs)

    @torch.no_grad()
    def __call__(self, lm, tokenizer) -> dict:
        """``{"recall@10", "ndcg@10", "n_users", "ranks"}``; ``ranks``: each user's 0-based
        target rank among the decoded items (``inf``: absent), a float array (n_users,)."""
        position = {item_id: i for i, item_id in enumerate(self.item_ids)}
        trie = ItemTrie(self.item_index, tokenizer)
        found = recommend(
            lm,
            tokenizer,
            self.prompts,
            trie,
            k=self.beams,
            batch_size=self.batch_size,
            exclude=self.exclude,
            beam_scores=self.beam_scores,
        )
        ranked = [[position[item_id] for item_id, _ in items] for items in found]
        ranks = list_ranks(ranked, self.targets)
        return {**evaluate_rankings(ranked, self.targets, ks=KS), "ranks": ranks}


def baseline_metrics(
    examples, train, n_items: int, sasrec_folder: Path, seen: str = "keep"
) -> dict[str, dict]:
    """Most-popular, item co-occurrence (the first-order Markov baseline over the last 5
    items, untuned) and (when the index folder has one) SASRec Recall/NDCG@10 on ``examples``
    under the ``seen`` protocol (``remove``: no item of the user's training sequence
    ``train[user]``)."""
    targets = [e.target for e in examples]
    seen_items = [train[e.user].tolist() for e in examples]
    popular = most_popular(train, n_items, len(examples), max(KS), histories=seen_items, seen=seen)
    found = {"most popular": evaluate_rankings(popular, targets, ks=KS)}
    # the last 5 of the training sequence are the history's last 5
    cooccurrence = markov_rankings(train, seen_items, max(KS), n_items=n_items, seen=seen)
    found["co-occurrence"] = evaluate_rankings(cooccurrence, targets, ks=KS)
    if (Path(sasrec_folder) / "config.json").is_file():
        # SASRec reads the last max_len items it is given and masks all of them
        histories = seen_items if seen == "remove" else [list(e.history) for e in examples]
        sasrec = sasrec_rankings(sasrec_folder, histories, max(KS), seen=seen)
        found["SASRec"] = evaluate_rankings(sasrec, targets, ks=KS)
    return found
