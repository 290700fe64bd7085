"""Prompt text -> token ids the way the backbone saw text in pre-training.

Training and decoding must feed a prompt as the same ids. Each tokenizer decides what it
puts before a text: LLaMA's adds BOS, SmolLM2's and Qwen's add nothing. Prompts get those
leading ids (never trailing ones such as an EOS, which would end the prompt), then the text's
own ids; responses get none (the collator appends the EOS that ends an index).
"""

from __future__ import annotations

from collections.abc import Sequence

_PROBE = "a b"


def leading_special_ids(tokenizer) -> list[int]:
    """Ids the tokenizer puts before any text when it adds its special tokens ([] for none)."""
    plain = tokenizer(_PROBE, add_special_tokens=False)["input_ids"]
    full = tokenizer(_PROBE)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return list(full[:start])
    raise ValueError(f"{type(tokenizer).__name__} changes a text's own ids when it adds specials")


def encode_prompts(tokenizer, prompts: Sequence[str]) -> tuple[list[int], list[list[int]]]:
    """(leading special ids, each prompt's text ids); a prompt's ids are ``lead + text ids``."""
    texts = tokenizer(list(prompts), add_special_tokens=False)["input_ids"] if prompts else []
    return leading_special_ids(tokenizer), texts


def encode_prompts_with_offsets(
    tokenizer, prompts: Sequence[str]
) -> tuple[list[int], list[list[int]], list[list[tuple[int, int]]]]:
    """:func:`encode_prompts` plus each text id's ``(start, end)`` characters in its prompt,
    from the same tokenizer call (needs a fast tokenizer)."""
    encoded = tokenizer(list(prompts), add_special_tokens=False, return_offsets_mapping=True)
    return leading_special_ids(tokenizer), encoded["input_ids"], encoded["offset_mapping"]
