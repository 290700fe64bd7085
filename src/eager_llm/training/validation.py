"""Ranking validation during training: Recall@10 / NDCG@10 of trie beam search on a fixed
sample of validation users, the numbers that ``load_best_model_at_end`` selects on.

The sample (``valid_users`` users drawn once with the run's seed) and the two baselines on
the same users (most-popular from the training sequences; the index folder's SASRec) are
fixed when the run starts, so every point of the learning curve ranks the same examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from eager_llm.baselines import most_popular, sasrec_rankings
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
    decoded per user (>= 10), ``batch_size`` users at a time.
    """

    prompts: list[str]
    targets: list[int]
    item_index: dict[str, list[str]]
    item_ids: list[str]
    beams: int = 10
    batch_size: int = 16

    @classmethod
    def build(cls, examples, item_index, item_ids, max_history, template, **kwargs):
        indices = ["".join(item_index[item_id]) for item_id in item_ids]
        histories = [e.history for e in examples]
        prompts = history_prompts(indices, histories, max_history, template)
        return cls(prompts, [e.target for e in examples], item_index, item_ids, **kwargs)

    @torch.no_grad()
    def __call__(self, lm, tokenizer) -> dict:
        """``{"recall@10", "ndcg@10", "n_users", "ranks"}``; ``ranks``: each user's 0-based
        target rank among the decoded items (``inf``: absent), a float array (n_users,)."""
        position = {item_id: i for i, item_id in enumerate(self.item_ids)}
        trie = ItemTrie(self.item_index, tokenizer)
        found = recommend(
            lm, tokenizer, self.prompts, trie, k=self.beams, batch_size=self.batch_size
        )
        ranked = [[position[item_id] for item_id, _ in items] for items in found]
        ranks = list_ranks(ranked, self.targets)
        return {**evaluate_rankings(ranked, self.targets, ks=KS), "ranks": ranks}


def baseline_metrics(examples, train, n_items: int, sasrec_folder: Path) -> dict[str, dict]:
    """Most-popular and (when the index folder has one) SASRec Recall/NDCG@10 on
    ``examples``."""
    targets = [e.target for e in examples]
    popular = most_popular(train, n_items, len(examples), max(KS))
    found = {"most popular": evaluate_rankings(popular, targets, ks=KS)}
    if (Path(sasrec_folder) / "config.json").is_file():
        sasrec = sasrec_rankings(sasrec_folder, [list(e.history) for e in examples], max(KS))
        found["SASRec"] = evaluate_rankings(sasrec, targets, ks=KS)
    return found
