"""Completion log-probabilities with each group's prompt run once (``share_prompt_forward``).

A GRPO batch holds ``G`` completions of the same prompt. TRL's loss forward runs the model
over ``G`` copies of prompt + completion and scores every position; on the default model a
prompt (image tokens and instructions, ~210 tokens) is ~4x its completion, so most of the
forward and backward recompute the same prompt. Here each group's prompt runs once (batch 1),
its key/value cache is repeated ``G`` times, the completions run on top of it, and only
completion positions go through the LM head. Causal attention makes the prompt's states
independent of what follows, so the log-probabilities equal the stock path's, and autograd
sums the ``G`` completions' gradients into the one prompt pass as the copies would.

`add_shared_prompt_forward` patches ``model.forward`` (on top of TRL's fused LM head) so
that ``model(..., shared_prompt=True)`` takes this path: the call still goes through the
DDP / FSDP / DeepSpeed wrapper, one forward per micro-batch as before.
"""

from __future__ import annotations

import functools
import types
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from trl.kernels import ChunkedLogProbFunction

from yaml_config import ConfigError

# Model types whose text positions are 1-D and sequential from the cache length (the
# continuation's positions are then the ones HF derives); the tiny models of these are
# tested against the stock path. Not Qwen2-VL / Qwen2.5-VL (3-D rope positions).
SUPPORTED_MODEL_TYPES = ("llava", "llama", "qwen2", "qwen3")
CHUNK_SIZE = 32768  # vocabulary tile of the chunked log-softmax (TRL's default)


@dataclass
class SharedPromptOutput:
    """``log_probs`` and ``entropy`` ``(B, T)`` over the completion positions (0 at padding;
    ``entropy`` None unless asked)."""

    log_probs: torch.Tensor
    entropy: torch.Tensor | None


def check_supported(model_type: str) -> None:
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ConfigError(
            f"share_prompt_forward supports the model types {', '.join(SUPPORTED_MODEL_TYPES)} "
            f"(1-D positions); this model is {model_type!r}: set share_prompt_forward false",
            key="share_prompt_forward",
        )


def prompt_groups(
    prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, images: list[torch.Tensor]
) -> list[list[int]]:
    """The rows of each distinct (prompt tokens, images), in order of first appearance (TRL
    shuffles a round's completions, so a group's rows need not be adjacent).
    ``prompt_ids``, ``prompt_mask`` ``(B, P)``; ``images[i]``: row i's pixel values."""
    groups: list[list[int]] = []
    for row in range(prompt_ids.size(0)):
        for group in groups:
            first = group[0]
            if (
                torch.equal(prompt_ids[row], prompt_ids[first])
                and torch.equal(prompt_mask[row], prompt_mask[first])
                and torch.equal(images[row], images[first])  # False when shapes differ
            ):
                group.append(row)
                break
        else:
            groups.append([row])
    return groups


def images_per_row(pixel_values: torch.Tensor | None, num_images: list[int] | None, rows: int):
    """Each row's slice of ``pixel_values`` (images stacked along dim 0; one per row when
    ``num_images`` is None)."""
    if pixel_values is None:
        return [torch.zeros(0)] * rows
    counts = num_images if num_images is not None else [1] * rows
    bounds = [0, *torch.tensor(counts).cumsum(0).tolist()]
    return [pixel_values[bounds[i] : bounds[i + 1]] for i in range(rows)]


def completion_log_probs(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    pixel_values: torch.Tensor | None = None,
    num_images: list[int] | None = None,
    temperature: float = 1.0,
    compute_entropy: bool = False,
    cast_lm_head_to_fp32: bool = False,
) -> SharedPromptOutput:
    """Log-probabilities ``(B, T)`` of the last ``T = logits_to_keep`` tokens of
    ``input_ids`` ``(B, P + T)`` (left-padded prompts, right-padded completions, as TRL
    concatenates them), each group's prompt run once. ``model``: the (unwrapped) causal LM."""
    prompt_ids, completion_ids = input_ids[:, :-logits_to_keep], input_ids[:, -logits_to_keep:]
    prompt_mask = attention_mask[:, :-logits_to_keep]
    completion_mask = attention_mask[:, -logits_to_keep:].bool()
    images = images_per_row(pixel_values, num_images, input_ids.size(0))
    backbone = model.base_model
    lm_head = model.get_output_embeddings()
    log_probs, entropies = [], []
    groups = prompt_groups(prompt_ids, prompt_mask, images)
    for rows in groups:
        first, size = rows[0], len(rows)
        real = prompt_mask[first].bool()  # left padding dropped: rope sees relative positions
        prompt = prompt_ids[first, real].unsqueeze(0)
        extra = {"pixel_values": images[first]} if images[first].numel() else {}
        opened = backbone(input_ids=prompt, use_cache=True, **extra)
        cache = opened.past_key_values
        cache.batch_repeat_interleave(size)
        completions, valid = completion_ids[rows], completion_mask[rows]
        mask = torch.cat([valid.new_ones(size, prompt.size(1)), valid], dim=1).long()
        rest = backbone(
            input_ids=completions, attention_mask=mask, past_key_values=cache, use_cache=True
        )
        # the state before token t predicts it: the prompt's last state, then completions'
        before = torch.cat(
            [opened.last_hidden_state[:, -1:].expand(size, -1, -1), rest.last_hidden_state[:, :-1]],
            dim=1,
        )
        scored = _score(
            before[valid],
            lm_head,
            completions[valid],
            temperature,
            compute_entropy,
            cast_lm_head_to_fp32,
        )
        log_probs.append(scored[0].new_zeros(valid.shape).masked_scatter(valid, scored[0]))
        if compute_entropy:
            entropies.append(scored[1].new_zeros(valid.shape).masked_scatter(valid, scored[1]))
    order = torch.tensor([row for rows in groups for row in rows]).argsort()
    return SharedPromptOutput(
        torch.cat(log_probs)[order], torch.cat(entropies)[order] if compute_entropy else None
    )


def _score(hidden, lm_head, targets, temperature, compute_entropy, cast_lm_head_to_fp32):
    """(log-probabilities, entropies or None) ``(N,)`` of ``targets`` under ``hidden``
    ``(N, H)`` through the LM head, in vocabulary tiles (TRL's kernel)."""
    context = nullcontext()
    if cast_lm_head_to_fp32:
        hidden = hidden.float()
        context = torch.autocast(hidden.device.type, enabled=False)
    outputs = ("log_probs", "entropy") if compute_entropy else ("log_probs",)
    with context:
        log_probs, entropy, *_ = ChunkedLogProbFunction.apply(
            hidden,
            lm_head.weight,
            lm_head.bias,
            targets,
            temperature,
            CHUNK_SIZE,
            None,
            1.0,
            outputs,
        )
    return log_probs, entropy


def add_shared_prompt_forward(
    model, temperature: float = 1.0, cast_lm_head_to_fp32: bool = False
) -> None:
    """Patch ``model.forward``: ``model(input_ids, attention_mask, logits_to_keep=T,
    shared_prompt=True, pixel_values=..., num_images=..., compute_entropy=...)`` returns a
    `SharedPromptOutput`; without ``shared_prompt`` the forward is the one it had."""
    check_supported(model.config.model_type)
    previous = model.forward

    @functools.wraps(type(model).forward)
    def forward(self, *args, shared_prompt=False, **kwargs):
        if not shared_prompt:
            return previous(*args, **kwargs)
        return completion_log_probs(
            self, temperature=temperature, cast_lm_head_to_fp32=cast_lm_head_to_fp32, **kwargs
        )

    model.forward = types.MethodType(forward, model)
