"""``RLTrainer``: one GRPO step on constrained beams per batch of training examples.

A training step, for a batch of examples (a history from a training sequence -> its next
item, :meth:`eager_llm.data.LeaveOneOut.train_examples`, under the inference prompt):

1. rollouts: trie beam search with the current policy (eval mode, no gradient) returns
   ``beams`` distinct items per example (:func:`eager_llm.decoding.recommend`, the
   config's seen-item protocol and beam scores);
2. rewards and group-normalised advantages (:mod:`.rewards`);
3. the loss of :class:`.policy.GRPOPolicy` on the teacher-forced sequences prompt + item
   index + EOS, rows built as the training collator builds them.

Everything else (optimizer, schedule, checkpoints, resume, data parallelism, ranking
validation, logs) is :class:`eager_llm.training.trainer.EagerTrainer`'s; training logs add
the mean ``reward`` per beam, the ``hit_rate`` (share of examples with the next item among
the beams) and the mean per-token ``kl``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from eager_llm.data import Example
from eager_llm.decoding import ItemTrie, recommend
from eager_llm.tasks import Sample, history_prompts
from eager_llm.training.collator import ResponseCollator
from eager_llm.training.trainer import EagerTrainer

from .rewards import RewardWeights, beam_rewards, cooccurrence_rewards, group_advantages

RL_PARTS = ("reward", "hit_rate", "kl")


class ExampleDataset(Dataset):
    """Training examples as a map-style dataset."""

    def __init__(self, examples: Sequence[Example]):
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, position: int) -> Example:
        return self.examples[position]


@dataclass(frozen=True)
class ExampleBatch:
    """A batch is its examples; the step builds the tensors after the rollouts. (A plain
    list of ``Example`` tuples would be rebuilt field by field by ``Trainer``'s input
    preparation, which a named tuple does not survive.)"""

    examples: list[Example]


def collate_examples(examples: list[Example]) -> dict[str, ExampleBatch]:
    return {"batch": ExampleBatch(list(examples))}


@dataclass
class Rollouts:
    """The beams of a batch: per example the decoded item positions (best first), the
    rewards and advantages, (G_i,) each."""

    beams: list[list[int]]
    rewards: list[torch.Tensor]
    advantages: list[torch.Tensor]
    hits: list[bool]


class RLTrainer(EagerTrainer):
    """:class:`EagerTrainer` whose loss is GRPO on trie beams (module docstring).

    ``item_index``, ``item_ids``: the index and position -> item id; ``template``,
    ``max_history``, ``max_length``: the prompts and rows; ``beams``, ``seen``,
    ``beam_scores``: the rollouts; ``weights``: :class:`.rewards.RewardWeights`;
    ``transitions``: (n_items, n_items) training transition counts for the co-occurrence
    term (None when its weight is 0).
    """

    def __init__(
        self,
        *args,
        item_index: dict[str, list[str]],
        item_ids: list[str],
        template: str,
        max_history: int,
        max_length: int,
        beams: int,
        seen: str,
        beam_scores: str,
        weights: RewardWeights,
        transitions: np.ndarray | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.item_ids = item_ids
        self.indices = ["".join(item_index[item_id]) for item_id in item_ids]
        self.position = {item_id: i for i, item_id in enumerate(item_ids)}
        self.trie = ItemTrie(item_index, self.processing_class)
        self.template, self.max_history = template, max_history
        self.rows = ResponseCollator(self.processing_class, max_length)
        self.beams, self.seen, self.beam_scores = beams, seen, beam_scores
        self.weights, self.transitions = weights, transitions

    def logged_parts(self) -> tuple[str, ...]:
        return RL_PARTS

    def prompts(self, examples: Sequence[Example]) -> list[str]:
        return history_prompts(
            self.indices, [e.history for e in examples], self.max_history, self.template
        )

    @torch.no_grad()
    def rollouts(self, lm, examples: Sequence[Example]) -> Rollouts:
        """Beam search with ``lm`` in eval mode, then each beam's reward and advantage."""
        exclude = None
        if self.seen == "remove":
            exclude = [[self.item_ids[i] for i in e.history] for e in examples]
        was_training = lm.training
        lm.eval()
        with self.accelerator.autocast():
            found = recommend(
                lm,
                self.processing_class,
                self.prompts(examples),
                self.trie,
                k=self.beams,
                batch_size=len(examples),
                exclude=exclude,
                beam_scores=self.beam_scores,
            )
        lm.train(was_training)
        beams = [[self.position[item_id] for item_id, _ in items] for items in found]
        targets = [e.target for e in examples]
        cooccurrence = None
        if self.transitions is not None:
            histories = [e.history for e in examples]
            cooccurrence = cooccurrence_rewards(self.transitions, histories, beams)
        rewards = beam_rewards(beams, targets, self.weights, self.beams, cooccurrence)
        hits = [target in items for items, target in zip(beams, targets, strict=True)]
        return Rollouts(beams, rewards, group_advantages(rewards), hits)

    def sequences(self, examples: Sequence[Example], rollouts: Rollouts) -> dict:
        """The policy's inputs: one row per beam (prompt + item index + EOS, labels on the
        index and EOS) and its advantage, on the trainer's device."""
        samples = [
            Sample(prompt, self.indices[item], "seqrec", item)
            for prompt, items in zip(self.prompts(examples), rollouts.beams, strict=True)
            for item in items
        ]
        batch = self.rows(samples)
        inputs = {key: batch[key] for key in ("input_ids", "attention_mask", "labels")}
        inputs["advantages"] = torch.cat(rollouts.advantages)
        return {key: value.to(self.args.device) for key, value in inputs.items()}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        examples = inputs["batch"].examples
        rollouts = self.rollouts(self.accelerator.unwrap_model(model).lm, examples)
        outputs = model(**self.sequences(examples, rollouts))
        device = outputs["loss"].device
        self.add_parts(
            {
                "kl": outputs["kl"],
                "reward": torch.cat(rollouts.rewards).mean().to(device),
                "hit_rate": torch.tensor(rollouts.hits, dtype=torch.float32).mean().to(device),
            }
        )
        return (outputs["loss"], outputs) if return_outputs else outputs["loss"]
