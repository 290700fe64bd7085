"""Batched generation that does each prompt's work once and stops paying for finished rows.

``model.generate(num_return_sequences=n)`` copies every prompt ``n`` times before the
prefill, so the vision tower and the prompt's transformer pass (image tokens and
instructions, ~170 tokens on the default model, most of a short rollout's cost) run ``n``
times; and it keeps decoding every row until the longest is done. :func:`generate_ids`
prefills each prompt once, repeats its key/value cache ``n`` times
(``Cache.batch_repeat_interleave``), and drops a row from the batch and the cache the step it
emits a stop token (``Cache.batch_select_indices``). Causal attention makes a prompt's
states independent of what follows, so each completion is drawn from the distribution
``generate`` draws it from: greedy rows give the same tokens up to the last bits of batch-size
dependent matmul kernels, sampled rows the same distribution (not the same random stream).

The fast path needs 1-D positions derived from the attention mask (``SHARED_PREFIX_TYPES``);
other models (Qwen2-VL's 3-D rope) and ``shared_prefix=False`` go through ``model.generate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Model types whose positions are `attention_mask.cumsum(-1) - 1` (as `generate` derives
# them): the continuation's positions are then the last prompt position + 1, + 2, ...
SHARED_PREFIX_TYPES = ("llava", "llama", "qwen2", "qwen3")


@dataclass(frozen=True)
class Decoding:
    """What to draw: ``n`` completions per prompt of at most ``max_new_tokens``; greedy, or
    sampled at ``temperature`` from the ``top_k`` most likely tokens (0: all)."""

    n: int = 1
    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0


def generate_ids(
    model,
    inputs: dict[str, torch.Tensor],
    decoding: Decoding,
    stop_ids: set[int],
    pad_id: int,
    *,
    shared_prefix: bool = True,
) -> list[list[int]]:
    """The generated token ids of ``n`` completions per prompt, prompt-major (``B * n``
    lists), each up to and including its first stop token.

    ``inputs``: a processor's batch (``input_ids``, ``attention_mask`` ``(B, P)``, left-padded;
    ``pixel_values`` and the like passed to the prefill as they are); ``pad_id`` pads
    ``generate``'s finished rows on the stock path."""
    with torch.inference_mode():
        if shared_prefix and model.config.model_type in SHARED_PREFIX_TYPES:
            return _decode_shared(model, inputs, decoding, stop_ids)
        return _decode_stock(model, inputs, decoding, stop_ids, pad_id)


def _decode_shared(model, inputs, decoding: Decoding, stop_ids: set[int]) -> list[list[int]]:
    mask = inputs["attention_mask"].long()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    out = model(
        input_ids=inputs["input_ids"],
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
        **extra,
    )
    cache, logits = out.past_key_values, out.logits[:, -1]
    if decoding.n > 1:
        cache.batch_repeat_interleave(decoding.n)
        logits = logits.repeat_interleave(decoding.n, dim=0)
        mask = mask.repeat_interleave(decoding.n, dim=0)
        positions = positions.repeat_interleave(decoding.n, dim=0)
    rows = torch.arange(logits.size(0))  # which completion each batch row is
    position = positions[:, -1]
    stops = torch.tensor(sorted(stop_ids), device=logits.device)
    completions: list[list[int]] = [[] for _ in range(logits.size(0))]
    for made in range(decoding.max_new_tokens):
        tokens = next_tokens(logits, decoding)
        for row, token in zip(rows.tolist(), tokens.tolist(), strict=True):
            completions[row].append(token)
        going = ~torch.isin(tokens, stops)
        if made + 1 == decoding.max_new_tokens or not going.any():
            break
        if not going.all():  # finished rows leave the batch and the cache
            keep = going.nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            rows, tokens, mask, position = rows[keep], tokens[keep], mask[keep], position[keep]
        mask = torch.cat([mask, mask.new_ones(mask.size(0), 1)], dim=1)
        position = position + 1
        out = model(
            input_ids=tokens[:, None],
            attention_mask=mask,
            position_ids=position[:, None],
            past_key_values=cache,
            use_cache=True,
        )
        logits = out.logits[:, -1]
    return completions


def next_tokens(logits: torch.Tensor, decoding: Decoding) -> torch.Tensor:
    """``(R,)`` tokens from ``logits`` ``(R, V)``: the argmax, or a draw from the softmax of
    ``logits / temperature`` restricted to the ``top_k`` largest (``generate``'s warpers in
    its order: temperature, then top-k)."""
    if not decoding.do_sample:
        return logits.argmax(dim=-1)
    scores = logits.float() / decoding.temperature
    if 0 < decoding.top_k < scores.size(-1):
        kth = torch.topk(scores, decoding.top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    return torch.multinomial(scores.softmax(dim=-1), num_samples=1).squeeze(1)


def _decode_stock(
    model, inputs, decoding: Decoding, stop_ids: set[int], pad_id: int
) -> list[list[int]]:
    """``model.generate`` (prompts copied ``n`` times, every row decoded to the longest),
    stopping each row on ``stop_ids`` as the shared path does."""
    sampling = {"do_sample": False}
    if decoding.do_sample:
        sampling = {"do_sample": True, "temperature": decoding.temperature}
        sampling["top_k"] = decoding.top_k
    output = model.generate(
        **inputs,
        num_return_sequences=decoding.n,
        max_new_tokens=decoding.max_new_tokens,
        eos_token_id=sorted(stop_ids),
        pad_token_id=pad_id,
        **sampling,
    )
    generated = output[:, inputs["input_ids"].shape[1] :].tolist()
    return [until_stop(ids, stop_ids) for ids in generated]


def until_stop(ids: list[int], stops: set[int]) -> list[int]:
    """``ids`` up to and including the first stop token (what follows is padding)."""
    for position, token in enumerate(ids):
        if token in stops:
            return ids[: position + 1]
    return ids


def stop_ids(model, tokenizer) -> set[int]:
    """The tokens that end a completion: the model's EOS id(s) and the tokenizer's."""
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    return ids | {tokenizer.eos_token_id}
