"""Decoding attention in which every row continuing a prompt reads that prompt's cache in place.

Beam search (several beams per user) and sampling (several completions per prompt) decode
many rows that share one prompt. Repeating the prompt's key/value cache per row makes every
decoding step read each prompt's keys and values once per row, and selecting rows (beams
reordered, finished completions dropped) copies all of them. Here the prompt cache stays one
row per prompt; only the tokens each row decodes itself live in a per-row cache. The queries
of a prompt's rows are stacked, so the prompt part of the attention is one matrix product per
prompt; the two parts share one softmax, so the result equals causal attention over
``[prompt | own tokens]``.

Use: build a `SharedPrompt`, switch the model's attention with
``attention_implementation(model, SHARED_PROMPT_ATTENTION)`` and pass
``cached_prompt=...`` to the forward of each decoding step (with the per-row cache as
``past_key_values``; transformers hands the keyword on to every attention layer; not
``shared_prompt``, the keyword Observe-R1's training forward takes).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformers import AttentionInterface
from transformers.cache_utils import Cache

SHARED_PROMPT_ATTENTION = "model_zoo_shared_prompt"


@dataclass
class SharedPrompt:
    """The prompts' cache and which prompt each decoding row continues.

    cache: per layer, keys and values ``(n_prompts, kv_heads, prompt_len, head_dim)``
    mask: BoolTensor ``(n_prompts, prompt_len)``, False at padding
    prompt, slot: LongTensor ``(n_rows,)``, each row's prompt and its place among that
        prompt's rows (``< width``; two rows of a prompt never share a slot)
    """

    cache: Cache
    mask: torch.Tensor
    prompt: torch.Tensor
    slot: torch.Tensor
    width: int


def shared_prompt_attention(
    module, query, key, value, attention_mask, scaling, dropout=0.0, cached_prompt=None, **kwargs
):
    """Attention of each row's new token over its prompt and its own decoded tokens.

    Registered as an attention implementation (``AttentionInterface``). query:
    ``(n_rows, heads, 1, head_dim)``; key, value: ``(n_rows, kv_heads, t, head_dim)``, the
    row's decoded tokens including the current one (all real: rows start decoding together).
    ``attention_mask`` is not read (the prompt's padding is ``cached_prompt.mask``). Computed
    in float32. Returns ``(n_rows, 1, heads, head_dim)``, None.
    """
    if kwargs.get("sliding_window") or kwargs.get("softcap"):
        raise NotImplementedError("shared-prompt attention supports plain full attention only")
    if cached_prompt is None:
        raise ValueError("the model did not pass `cached_prompt` on to its attention")
    shared = cached_prompt
    layer = shared.cache.layers[module.layer_idx]
    prompt_keys, prompt_values = layer.keys.float(), layer.values.float()
    n_prompts, kv_heads, prompt_len, head_dim = prompt_keys.shape
    n_rows, heads = query.shape[:2]
    group = heads // kv_heads  # query head h reads kv head h // group
    dtype = query.dtype
    query = query.float().reshape(n_rows, kv_heads, group, head_dim) * scaling

    def stack(rows: torch.Tensor) -> torch.Tensor:
        """(n_rows, kv_heads, group, n) -> (n_prompts, kv_heads, width * group, n), zero-filled."""
        stacked = rows.new_zeros(n_prompts, shared.width, kv_heads, group, rows.shape[-1])
        stacked[shared.prompt, shared.slot] = rows
        return stacked.transpose(1, 2).reshape(n_prompts, kv_heads, shared.width * group, -1)

    def unstack(stacked: torch.Tensor) -> torch.Tensor:
        """Inverse of ``stack``: (n_prompts, kv_heads, width * group, n) -> (n_rows, ...)."""
        stacked = stacked.view(n_prompts, kv_heads, shared.width, group, -1).transpose(1, 2)
        return stacked[shared.prompt, shared.slot]

    prompt_scores = unstack(stack(query) @ prompt_keys.transpose(-1, -2))  # (n_rows, kv, g, L)
    prompt_scores = prompt_scores.masked_fill(~shared.mask[shared.prompt, None, None], -torch.inf)
    own_scores = query @ key.float().transpose(-1, -2)  # (n_rows, kv_heads, group, t)
    weights = torch.cat([prompt_scores, own_scores], dim=-1).softmax(dim=-1)
    output = unstack(stack(weights[..., :prompt_len]) @ prompt_values)
    output = output + weights[..., prompt_len:] @ value.float()  # (n_rows, kv, group, head_dim)
    return output.reshape(n_rows, 1, heads, head_dim).to(dtype), None


AttentionInterface.register(SHARED_PROMPT_ATTENTION, shared_prompt_attention)


@contextmanager
def attention_implementation(model, name: str):
    """Switch the attention implementation of ``model``'s decoder (the text model of a
    vision-language model; its vision tower keeps its own) to ``name`` inside the block."""
    decoder = model.get_decoder()
    previous = decoder.config._attn_implementation
    decoder.set_attn_implementation(name)
    if decoder.config._attn_implementation != name:
        raise NotImplementedError(f"{type(decoder).__name__} cannot switch its attention to {name}")
    try:
        yield
    finally:
        decoder.set_attn_implementation(previous)
