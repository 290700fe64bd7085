"""Samples -> tensors, with the loss on the response only.

A row is ``prompt ids + response ids + [EOS]``: prompt and response are tokenized apart,
the prompt by :func:`eager_llm.prompt_ids.encode_prompts` (the tokenizer's leading specials,
e.g. LLaMA's BOS, then the text), so its ids are exactly those inference feeds
(:func:`eager_llm.decoding.recommend`); the response without specials, and the EOS is the
trie's index terminator. Rows longer than ``max_length`` keep at most ``max_length // 2``
response tokens (then EOS), the leading specials and the end of the prompt's text. Padding
is on the right. Prompt tokens inside a sample's ``labelled_spans`` (the history items of
dense seqrec) are labels too; finding them needs a fast tokenizer's offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from eager_llm.prompt_ids import encode_prompts, encode_prompts_with_offsets
from eager_llm.tasks import Sample

IGNORE = -100


def tokens_in_spans(
    offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> list[int]:
    """Positions of the tokens (by their ``(start, end)`` characters) inside any span."""
    return [
        position
        for position, (start, end) in enumerate(offsets)
        if any(low <= start and end <= high for low, high in spans)
    ]


@dataclass
class ResponseCollator:
    """Callable: list of :class:`Sample` -> batch dict.

    Returns input_ids, attention_mask, labels: LongTensor (B, T), labels ``-100`` on prompt
    and padding; eos_positions: LongTensor (B,), position of each row's final EOS;
    target_items: LongTensor (B,); gct_rows: BoolTensor (B,), True on ``gct_task`` rows.
    """

    tokenizer: object
    max_length: int = 512
    gct_task: str = "seqrec"

    def row(
        self, lead: Sequence[int], prompt: Sequence[int], response: Sequence[int]
    ) -> tuple[list[int], int, int]:
        """(ids, prompt length, prompt text tokens cut from the front) of one row, truncated
        to ``max_length``."""
        response = [*response[: self.max_length // 2], self.tokenizer.eos_token_id]
        room = self.max_length - len(response) - len(lead)
        cut = max(0, len(prompt) - room)
        prompt = [*lead, *prompt[cut:]]
        return [*prompt, *response], len(prompt), cut

    def __call__(self, samples: Sequence[Sample]) -> dict[str, torch.Tensor]:
        prompt_texts = [s.prompt for s in samples]
        offsets = None
        if any(s.labelled_spans for s in samples):
            lead, prompts, offsets = encode_prompts_with_offsets(self.tokenizer, prompt_texts)
        else:
            lead, prompts = encode_prompts(self.tokenizer, prompt_texts)
        response_texts = [s.response for s in samples]
        responses = self.tokenizer(response_texts, add_special_tokens=False)["input_ids"]
        rows = [self.row(lead, p, r) for p, r in zip(prompts, responses, strict=True)]
        width = max(len(ids) for ids, _, _ in rows)
        pad = self.tokenizer.pad_token_id
        pad = self.tokenizer.eos_token_id if pad is None else pad
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for b, (ids, prompt_length, cut) in enumerate(rows):
            input_ids[b, : len(ids)] = torch.tensor(ids)
            attention_mask[b, : len(ids)] = 1
            labels[b, prompt_length : len(ids)] = input_ids[b, prompt_length : len(ids)]
            if offsets is not None:
                for position in tokens_in_spans(offsets[b], samples[b].labelled_spans):
                    if position >= cut:
                        column = len(lead) + position - cut
                        labels[b, column] = input_ids[b, column]
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "eos_positions": torch.tensor([len(ids) - 1 for ids, _, _ in rows]),
            "target_items": torch.tensor([s.target for s in samples]),
            "gct_rows": torch.tensor([s.task == self.gct_task for s in samples]),
        }
