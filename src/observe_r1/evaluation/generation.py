"""Batched generation that does each prompt's work once and stops paying for finished rows.

``model.generate(num_return_sequences=n)`` copies every prompt ``n`` times before the
prefill, so the vision tower and the prompt's transformer pass (image tokens and
instructions, ~170 tokens on the default model, most of a short rollout's cost) run ``n``
times; and it keeps decoding every row until the longest is done. :func:`generate_ids`
prefills the tokens all prompts of the batch start with (the system prompt) once and each
prompt once; its ``n`` rows read the prompt's key/value cache in place
(`model_zoo.prompt_attention`: one matrix product per prompt, only the decoded tokens cached
per row); a row leaves the batch and its cache the step it emits a stop token
(``Cache.batch_select_indices``), and sampling is by inverse CDF. Causal attention makes a prompt's
states independent of what follows, so each completion is drawn from the distribution
``generate`` draws it from: greedy rows give the same tokens up to the last bits of batch-size
dependent matmul kernels, sampled rows the same distribution (not the same random stream).

The fast path needs 1-D positions derived from the attention mask (``SHARED_PREFIX_TYPES``);
other models (Qwen2-VL's 3-D rope) and ``shared_prefix=False`` go through ``model.generate``.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, replace

import torch
from transformers.cache_utils import Cache, DynamicLayer

from model_zoo.hardware import PRECISIONS
from model_zoo.prompt_attention import (
    SHARED_PROMPT_ATTENTION,
    SharedPrompt,
    attention_implementation,
)

# Model types whose positions are `attention_mask.cumsum(-1) - 1` (as `generate` derives
# them): the continuation's positions are then the last prompt position + 1, + 2, ...
SHARED_PREFIX_TYPES = ("llava", "llama", "qwen2", "qwen3")
MIN_SHARED_PREFIX = 8  # shorter common prefixes are prefilled with the rest of the row
RESERVE = 64  # cache positions allocated ahead of the tokens that fill them


class ReservedLayer(DynamicLayer):
    """A `DynamicLayer` that writes new keys and values into room reserved ahead
    (``RESERVE`` positions at a time) instead of concatenating them to the cache: a decode
    step copies one position, not the whole cache (the concatenation was 43 % of a decode
    step of the default model at 64 rows). ``keys``, ``values``: views of the filled part,
    ``(B, heads, length, head_dim)``."""

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self.room = (self.keys, self.values)
        length, new = self.get_seq_length(), key_states.size(-2)
        if not self._has_room(key_states.size(0), length + new):
            self._reserve(key_states, length + new + RESERVE)
        for room, states in zip(self.room, (key_states, value_states), strict=True):
            room[..., length : length + new, :] = states
        self.keys, self.values = (room[..., : length + new, :] for room in self.room)
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the rows ``indices`` with their reserved room: one copy per finished row's
        step (selecting the filled part alone and reserving anew at the next update took
        two)."""
        length = self.get_seq_length()
        if not length or self.keys.data_ptr() != self.room[0].data_ptr():
            super().batch_select_indices(indices)
            return
        self.room = tuple(room[indices] for room in self.room)
        self.keys, self.values = (room[..., :length, :] for room in self.room)

    def _has_room(self, batch: int, length: int) -> bool:
        """The reserved tensors hold this batch's cache (not replaced by a batch selection
        or repeat) and ``length`` positions."""
        keys = self.room[0]
        return (
            keys.dim() == 4
            and keys.size(0) == batch
            and keys.size(-2) >= length
            and self.keys.data_ptr() == keys.data_ptr()
        )

    def _reserve(self, states: torch.Tensor, capacity: int) -> None:
        length = self.get_seq_length()
        rooms = []
        for cached in (self.keys, self.values):
            shape = (states.size(0), states.size(1), capacity, states.size(-1))
            room = states.new_empty(shape)
            if length:
                room[..., :length, :] = cached
            rooms.append(room)
        self.room = tuple(rooms)


def new_cache() -> Cache:
    """An empty cache of `ReservedLayer`s (one per decoder layer, made on first use)."""
    return Cache(layer_class_to_replicate=ReservedLayer)


@dataclass(frozen=True)
class Decoding:
    """What to draw: ``n`` completions per prompt of at most ``max_new_tokens``; greedy, or
    sampled at ``temperature`` from the ``top_k`` most likely tokens (0: all); never one of
    ``suppress`` (TRL suppresses a VLM's image token)."""

    n: int = 1
    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    suppress: tuple[int, ...] = ()


def generate_ids(
    model,
    inputs: dict[str, torch.Tensor],
    decoding: Decoding,
    stop_ids: set[int],
    pad_id: int,
    *,
    shared_prefix: bool = True,
    precision: str = "fp32",
) -> list[list[int]]:
    """The generated token ids of ``n`` completions per prompt, prompt-major (``B * n``
    lists), each up to and including its first stop token.

    ``inputs``: a processor's batch (``input_ids``, ``attention_mask`` ``(B, P)``, left-padded;
    ``pixel_values`` and the like passed to the prefill as they are); ``pad_id`` pads
    ``generate``'s finished rows on the stock path. ``precision`` ``"bf16"``: the whole
    generation in one bf16 autocast region (each fp32 weight cast once, not per token)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    bf16 = precision == "bf16"
    region = torch.autocast(model.device.type, torch.bfloat16) if bf16 else nullcontext()
    with torch.inference_mode(), region:  # fp32: an enclosing autocast region stays in force
        if shared_prefix and model.config.model_type in SHARED_PREFIX_TYPES:
            return _decode_shared(model, inputs, decoding, stop_ids)
        return _decode_stock(model, inputs, decoding, stop_ids, pad_id)


def _decode_shared(model, inputs, decoding: Decoding, stop_ids: set[int]) -> list[list[int]]:
    """`generate_ids`'s fast path: one prefill, finished rows dropped; with ``n > 1`` the
    prompts' cache is read in place by their ``n`` rows (`model_zoo.prompt_attention`), so
    only the decoded tokens are cached per row."""
    mask = inputs["attention_mask"].long()
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    cache, logits, mask, position = prefill(model, inputs["input_ids"], mask, extra)
    step = {"attention_mask": mask}  # the decoding steps' own inputs
    switch = nullcontext()
    if decoding.n > 1:
        prompts = torch.arange(logits.size(0), device=logits.device)
        shared = SharedPrompt(
            cache,
            mask.bool(),
            prompt=prompts.repeat_interleave(decoding.n),
            slot=torch.arange(decoding.n, device=logits.device).repeat(logits.size(0)),
            width=decoding.n,
        )
        cache, step = new_cache(), {"cached_prompt": shared}
        logits = logits.repeat_interleave(decoding.n, dim=0)
        position = position.repeat_interleave(decoding.n, dim=0)
        switch = attention_implementation(model, SHARED_PROMPT_ATTENTION)
    rows = torch.arange(logits.size(0), device=logits.device)  # the completion of each row
    stops = torch.tensor(sorted(stop_ids), device=logits.device)
    completions: list[list[int]] = [[] for _ in range(logits.size(0))]
    with switch:
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
                rows, tokens, position = rows[keep], tokens[keep], position[keep]
                step = _select_rows(step, keep)
            position = position + 1
            step = _grow_mask(step)
            out = model(
                input_ids=tokens[:, None],
                position_ids=position[:, None],
                past_key_values=cache,
                use_cache=True,
                **step,
            )
            logits = out.logits[:, -1]
    return completions


def _select_rows(step: dict, keep: torch.Tensor) -> dict:
    """The decoding inputs of the rows ``keep``."""
    if "attention_mask" in step:
        return {"attention_mask": step["attention_mask"][keep]}
    shared = step["cached_prompt"]
    return {"cached_prompt": replace(shared, prompt=shared.prompt[keep], slot=shared.slot[keep])}


def _grow_mask(step: dict) -> dict:
    """A repeated-cache step's attention mask, one position longer (the shared prompt's
    attention needs none: every row's own tokens are real)."""
    if "attention_mask" not in step:
        return step
    mask = step["attention_mask"]
    return {"attention_mask": torch.cat([mask, mask.new_ones(mask.size(0), 1)], dim=1)}


def prefill(model, ids: torch.Tensor, mask: torch.Tensor, extra: dict):
    """Run the prompts ``ids`` ``(B, P)`` (left-padded per ``mask``) through the model, the
    tokens every row starts with (the system prompt) once: (cache, last logits ``(B, V)``,
    attention mask ``(B, P')`` of the cached positions, last position ``(B,)``).

    The common prefix ends before the first token the images fill in (``extra`` holds
    their pixels) and leaves every row at least one token; the rows' remainders are
    left-padded after it, so padding may sit mid-sequence: the mask hides it, and positions
    count only real tokens, as ``generate`` counts them."""
    several = ids.size(0) > 1  # one row has nothing to share
    image_token = getattr(model.config, "image_token_id", None)  # None for a text model
    shared = common_prefix_length(ids, mask, image_token) if several else 0
    shared = shared if shared >= MIN_SHARED_PREFIX else 0
    cache = new_cache()
    if shared:
        first = int((mask[0] == 0).sum())
        model(
            input_ids=ids[:1, first : first + shared],
            position_ids=torch.arange(shared, device=ids.device)[None],
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        cache.batch_repeat_interleave(ids.size(0))
        ids, mask = _remainders(ids, mask, shared)
    positions = (shared + mask.cumsum(-1) - 1).clamp(min=shared)
    mask = torch.cat([mask.new_ones(ids.size(0), shared), mask], dim=1)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
        **extra,
    )
    return cache, out.logits[:, -1], mask, positions[:, -1]


def common_prefix_length(ids: torch.Tensor, mask: torch.Tensor, image_token: int | None) -> int:
    """How many tokens every row of ``ids`` ``(B, P)`` starts with after its left padding,
    stopping before ``image_token`` and one token short of the shortest row."""
    starts = (mask == 0).sum(dim=1).tolist()
    rows = [ids[i, start:] for i, start in enumerate(starts)]
    limit = min(len(row) for row in rows) - 1
    first = rows[0][:limit]
    same = torch.stack([row[:limit] == first for row in rows[1:]]).all(dim=0)
    if image_token is not None:
        same &= first != image_token
    differs = (~same).nonzero()
    return int(differs[0]) if len(differs) else limit


def _remainders(ids: torch.Tensor, mask: torch.Tensor, shared: int):
    """Each row's tokens after its padding and the ``shared`` prefix, left-padded again:
    (ids, mask) ``(B, R)``."""
    starts = (mask == 0).sum(dim=1).tolist()
    rests = [ids[i, start + shared :] for i, start in enumerate(starts)]
    width = max(len(rest) for rest in rests)
    padded = ids.new_zeros(len(rests), width)
    rest_mask = mask.new_zeros(len(rests), width)
    for i, rest in enumerate(rests):
        padded[i, width - len(rest) :] = rest
        rest_mask[i, width - len(rest) :] = 1
    return padded, rest_mask


def next_tokens(logits: torch.Tensor, decoding: Decoding) -> torch.Tensor:
    """``(R,)`` tokens from ``logits`` ``(R, V)``: the argmax, or a draw from the softmax of
    ``logits / temperature`` restricted to the ``top_k`` largest (``generate``'s warpers in
    its order: suppressed tokens, temperature, then top-k)."""
    if decoding.suppress:
        suppress = torch.tensor(decoding.suppress, device=logits.device)
        logits = logits.index_fill(-1, suppress, float("-inf"))
    if not decoding.do_sample:
        return logits.argmax(dim=-1)
    scores = logits.float() / decoding.temperature
    if 0 < decoding.top_k < scores.size(-1):
        kth = torch.topk(scores, decoding.top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    return draw(scores.softmax(dim=-1))


def draw(probabilities: torch.Tensor) -> torch.Tensor:
    """One index per row of ``probabilities`` ``(R, V)``, row i drawn with probability
    ``probabilities[i]``: the first index whose cumulative sum exceeds a uniform draw (an
    index of probability 0 never does). Same law as ``torch.multinomial(p, 1)``, ~20x
    faster on a CPU at 64 x 49k (3 ms vs 65 ms a step)."""
    cumulative = probabilities.cumsum(dim=-1)
    uniform = torch.rand(probabilities.size(0), 1, device=probabilities.device)
    picked = torch.searchsorted(cumulative, uniform * cumulative[:, -1:], right=True)
    return picked.squeeze(1).clamp(max=probabilities.size(-1) - 1)


def _decode_stock(
    model, inputs, decoding: Decoding, stop_ids: set[int], pad_id: int
) -> list[list[int]]:
    """``model.generate`` (prompts copied ``n`` times, every row decoded to the longest),
    stopping each row on ``stop_ids`` as the shared path does."""
    sampling = {"do_sample": False, "suppress_tokens": list(decoding.suppress) or None}
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
