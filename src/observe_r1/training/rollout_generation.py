"""GRPO's rollouts through `observe_r1.evaluation.generation`: each group's prompt prefilled once.

TRL's ``_generate_single_turn`` hands ``model.generate`` a batch in which every prompt
appears ``num_generations`` times in a row (its ``RepeatSampler``) and keeps decoding every
row until the longest stops. `shared_prefix_generate` stands in for ``model.generate``
during a rollout (`patched_generate`): it finds those groups of identical rows (token ids,
mask and pixels), generates each group's completions from one prefill with finished rows
dropped, and returns what ``generate`` returns, ``(B, P + T)`` prompt + completion ids padded
with the pad token. A batch that is not such groups, and a generation config beyond plain
temperature / top-k sampling or greedy, go to the model's own ``generate`` unchanged.
"""

from __future__ import annotations

import types
from contextlib import contextmanager

import torch

from observe_r1.evaluation.generation import SHARED_PREFIX_TYPES, Decoding, generate_ids

ROW_FIELDS = ("input_ids", "attention_mask", "pixel_values")  # one row each, dim 0


def plain_decoding(config, group: int) -> Decoding | None:
    """The `Decoding` of a ``GenerationConfig`` that only samples at a temperature from the
    top-k (or decodes greedily), suppressed tokens excluded; None when it asks for more
    (top-p, min-p, penalties...)."""
    asks_more = (
        config.top_p not in (None, 1.0)
        or config.min_p is not None
        or config.repetition_penalty not in (None, 1.0)
        or config.num_beams not in (None, 1)
        or config.bad_words_ids
        or config.begin_suppress_tokens
        or config.no_repeat_ngram_size
        or config.min_new_tokens
        or config.max_new_tokens is None
    )
    if asks_more:
        return None
    return Decoding(
        n=group,
        max_new_tokens=config.max_new_tokens,
        do_sample=bool(config.do_sample),
        temperature=config.temperature or 1.0,
        top_k=config.top_k or 0,
        suppress=tuple(config.suppress_tokens or ()),
    )


def group_size(inputs: dict[str, torch.Tensor]) -> int | None:
    """The length of the runs of identical rows (ids, mask, pixels) the batch is made of, when
    they all have one length of at least 2 (TRL's groups; a group split between processes
    gives shorter runs); None otherwise."""
    rows = inputs["input_ids"].size(0)
    if set(inputs) - set(ROW_FIELDS) or any(v.size(0) != rows for v in inputs.values()):
        return None
    same_as_previous = torch.ones(rows - 1, dtype=torch.bool)
    for value in inputs.values():
        flat = value.reshape(rows, -1)
        same_as_previous &= (flat[1:] == flat[:-1]).all(dim=1)
    starts = [0, *(i + 1 for i, same in enumerate(same_as_previous.tolist()) if not same)]
    lengths = {end - start for start, end in zip(starts, [*starts[1:], rows], strict=True)}
    return lengths.pop() if len(lengths) == 1 and min(lengths) >= 2 else None


def shared_prefix_generate(self, stock, generation_config=None, **inputs):
    """``model.generate`` for a rollout batch (module docstring); ``stock``: the model's own."""
    group = group_size(inputs)
    decoding = plain_decoding(generation_config, group) if generation_config and group else None
    if decoding is None or getattr(self, "is_gradient_checkpointing", False):  # no cache then
        return stock(generation_config=generation_config, **inputs)
    firsts = {field: value[::group] for field, value in inputs.items()}
    eos = generation_config.eos_token_id
    stops = set(eos if isinstance(eos, list) else [eos])
    pad = generation_config.pad_token_id
    pad = min(stops) if pad is None else pad  # after a stop token only padding follows
    completions = generate_ids(self, firsts, decoding, stops, pad)
    width = max(len(ids) for ids in completions)
    tail = inputs["input_ids"].new_full((len(completions), width), pad)
    for row, ids in enumerate(completions):
        tail[row, : len(ids)] = torch.tensor(ids)
    return torch.cat([inputs["input_ids"], tail], dim=1)


@contextmanager
def patched_generate(model):
    """``model.generate`` is `shared_prefix_generate` inside the block, for a model whose
    positions are 1-D (TRL turns gradient checkpointing off around its ``generate`` call)."""
    if model.config.model_type not in SHARED_PREFIX_TYPES:
        yield
        return
    stock = model.generate
    model.generate = types.MethodType(
        lambda self, **kwargs: shared_prefix_generate(self, stock, **kwargs), model
    )
    try:
        yield
    finally:
        del model.generate  # the class's method again
