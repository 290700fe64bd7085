"""Build one generation round out of chosen completions of several TRL rounds.

A TRL round (``GRPOTrainer._generate_and_score_completions``' output) holds, per completion,
prompt-aligned tensors (left-padded), completion-aligned ones (right-padded), tensors over
prompt + completion (``mm_token_type_ids``), per-sample values and image tensors. Each
part is split per sample (TRL's ``split_pixel_values_by_grid``), its chosen rows kept,
then all are padded to common widths and joined. A key not listed here is an error, so a
TRL upgrade that adds one fails loudly instead of training on misaligned tensors.
"""

from __future__ import annotations

from typing import Any

import torch
from trl.trainer.utils import split_pixel_values_by_grid, unsplit_pixel_values_by_grid

PAD_TOKEN = "pad_token"  # stands for the tokenizer's pad id
PROMPT_KEYS = {"prompt_ids": PAD_TOKEN, "prompt_mask": 0}  # (B, P), left-padded
COMPLETION_KEYS = {  # (B, C), right-padded
    "completion_ids": PAD_TOKEN,
    "completion_mask": 0,
    "old_per_token_logps": 0.0,
    "ref_per_token_logps": 0.0,
    "sampling_per_token_logps": 0.0,
    "importance_sampling_ratio": 0.0,  # (B, 1) at sequence level: nothing to pad
    "tool_mask": 1,
}
PROMPT_COMPLETION_KEYS = {"token_type_ids": 0, "mm_token_type_ids": 0}  # (B, P + C)
PER_SAMPLE_KEYS = {  # a row (or, split, a list item) per completion
    "advantages",
    "num_images",
    "num_tiles",
    "pixel_values",
    "image_grid_thw",
    "image_sizes",
    "image_position_ids",
    "pixel_attention_mask",
    "spatial_shapes",
}
RECOUNTED_KEYS = {"num_items_in_batch"}  # the caller recounts it over the merged round


def _pad(tensors: list[torch.Tensor], value, left: bool) -> torch.Tensor:
    width = max(t.shape[1] for t in tensors)
    padded = []
    for t in tensors:
        fill = t.new_full((t.shape[0], width - t.shape[1], *t.shape[2:]), value)
        padded.append(torch.cat([fill, t] if left else [t, fill], dim=1))
    return torch.cat(padded)


def _rows(value, rows: list[int]):
    return [value[i] for i in rows] if isinstance(value, list) else value[rows]


def merge_rounds(parts: list[tuple[dict[str, Any], list[int]]], pad_token_id: int) -> dict:
    """One round of the completions ``rows`` of each ``(round, rows)`` part, in order.
    ``num_items_in_batch`` is left out (it counts every process's tokens: recount it)."""
    unknown = set(parts[0][0]) - set(PROMPT_KEYS) - set(COMPLETION_KEYS)
    unknown -= set(PROMPT_COMPLETION_KEYS) | PER_SAMPLE_KEYS | RECOUNTED_KEYS
    if unknown:
        raise ValueError(f"dynamic sampling cannot merge TRL round key(s) {sorted(unknown)}")
    chosen = []
    for output, rows in parts:
        split = split_pixel_values_by_grid(output)
        width = output["prompt_ids"].shape[1]
        item = {}
        for key, value in split.items():
            if value is None or key in RECOUNTED_KEYS:
                continue
            if key in PROMPT_COMPLETION_KEYS:  # split at the prompt's width
                item[key] = (value[rows, :width], value[rows, width:])
            else:
                item[key] = _rows(value, rows)
        chosen.append(item)
    merged = {}
    for key, first in chosen[0].items():
        values = [item[key] for item in chosen]
        pad = PROMPT_KEYS.get(key, COMPLETION_KEYS.get(key, PROMPT_COMPLETION_KEYS.get(key)))
        pad = pad_token_id if pad == PAD_TOKEN else pad
        if key in PROMPT_COMPLETION_KEYS:
            prompt = _pad([v[0] for v in values], pad, left=True)
            merged[key] = torch.cat([prompt, _pad([v[1] for v in values], pad, left=False)], 1)
        elif key in PROMPT_KEYS or key in COMPLETION_KEYS:  # (B, 1) ratios: width 1 each
            merged[key] = _pad(values, pad, left=key in PROMPT_KEYS)
        elif isinstance(first, list):
            merged[key] = [v for value in values for v in value]
        else:
            merged[key] = torch.cat(values)
    return unsplit_pixel_values_by_grid(merged)
