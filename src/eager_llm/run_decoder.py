"""A trained run as a recommender: its ``final/`` folder read, the model loaded once, and
prompts ranked by trie beam search under the run's precision.

``eager-llm eval`` (every user of a split) and ``eager-llm recommend`` (one history or a
file of them) decode through :class:`RunDecoder`, so both rank the same way.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from eager_llm.decoding import ItemTrie, recommend
from eager_llm.indexing import load_item_index
from eager_llm.tasks import recommendation_prompt
from eager_llm.training.model import load_lm
from eager_llm.training.stages import RUN_SETTINGS


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


class RunDecoder:
    """``run``'s tokenizer, LM (weights in ``dtype``, on ``device``, eval mode) and trie.

    A run trained under bf16 autocast decodes under bf16 autocast (its weights stay in
    ``dtype``), so ranking uses the precision of training."""

    def __init__(self, run: Run, dtype: str = "float32", device: str = "cpu") -> None:
        self.run = run
        self.tokenizer, model = load_lm(str(run.final), run.item_index, dtype)
        self.model = model.to(device).eval()
        self.trie = ItemTrie(run.item_index, self.tokenizer)
        self._device = torch.device(device).type

    def prompts(self, histories: Sequence[Sequence[str]], instruction: int = 0) -> list[str]:
        """The seqrec prompt of each history of item ids (oldest first, last
        ``max_history`` kept) under seqrec instruction ``instruction``."""
        index = self.run.item_index
        return [
            recommendation_prompt(
                ["".join(index[item]) for item in history[-self.run.max_history :]],
                self.run.template,
                instruction,
            )
            for history in histories
        ]

    def top_k(
        self,
        prompts: Sequence[str],
        k: int,
        batch_size: int = 16,
        *,
        exclude: Sequence[Collection[str]] | None = None,
        beam_scores: str = "vocabulary",
    ) -> list[list[tuple[Hashable, float]]]:
        """Per prompt, the top-``k`` ``(item id, log-probability)``, best first, never an
        item of that prompt's ``exclude`` (item ids; :func:`eager_llm.decoding.recommend`)."""
        bf16 = self.run.precision == "bf16-autocast"
        with torch.autocast(self._device, torch.bfloat16, enabled=bf16):
            return recommend(
                self.model,
                self.tokenizer,
                prompts,
                self.trie,
                k=k,
                batch_size=batch_size,
                exclude=exclude,
                beam_scores=beam_scores,
            )
