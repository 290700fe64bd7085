"""Completion log-probabilities with each group's prompt run once (``share_prompt_forward``).

A GRPO batch holds ``G`` completions of the same prompt. TRL's loss forward runs the model
over ``G`` copies of prompt + completion and scores every position; on the default model a
prompt (image tokens and instructions, ~210 tokens) is ~4x its completion, so most of the
forward and backward recompute the same prompt. Here each group's prompt runs once (batch 1),
its key/value cache is repeated ``G`` times, the completions run on top of it, and only
completion positions go through the LM head. Causal attention makes the prompt's states
independent of what follows, so the log-probabilities equal the stock path's, and autograd
sums the ``G`` completions' gradients into the one prompt pass as the copies would.

Qwen2-VL / Qwen2.5-VL place text and image tokens with 3-D (temporal, height, width)
rotary positions (M-RoPE): the prompt's come from the model's ``get_rope_index``, and a
completion token ``t`` sits at ``prompt length + rope delta + t`` on all three axes, as in
the stock forward over the whole sequence; both are passed explicitly.

`add_shared_prompt_forward` patches ``model.forward`` (on top of TRL's fused LM head) so
that ``model(..., shared_prompt=True)`` takes this path: the call still goes through the
DDP / FSDP / DeepSpeed wrapper, one forward per micro-batch as before.
"""

from __future__ import annotations

import functools
import itertools
import types
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch.distributed.tensor import DTensor
from trl.kernels import ChunkedLogProbFunction

from yaml_config import ConfigError

# Model types whose tiny models are tested against the stock path: text positions 1-D and
# sequential from the cache length (the continuation's positions are the ones HF derives),
# or M-RoPE with the positions passed explicitly; text models without logit soft-capping.
SUPPORTED_MODEL_TYPES = ("llava", "llama", "qwen2", "qwen3", "qwen2_vl", "qwen2_5_vl")
MROPE_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")
SUPPORTED_TEXT_TYPES = ("llama", "qwen2", "qwen3", "qwen2_vl_text", "qwen2_5_vl_text")
QWEN_IMAGE_INPUTS = ("image_grid_thw", "mm_token_type_ids")  # besides pixel_values
DROPOUT_KEYS = ("attention_dropout", "hidden_dropout", "dropout", "resid_pdrop", "embd_pdrop")
CHUNK_SIZE = 32768  # vocabulary tile of the chunked log-softmax (TRL's default)


@dataclass
class SharedPromptOutput:
    """``log_probs`` and ``entropy`` ``(B, T)`` over the completion positions (0 at padding;
    ``entropy`` None unless asked)."""

    log_probs: torch.Tensor
    entropy: torch.Tensor | None


def check_supported(config) -> None:
    """Raise ``ConfigError`` unless the model (``config``: its ``PretrainedConfig``) and its
    text model are tested types and no dropout is on (the equality with the stock path holds
    only without random masks)."""
    text = config.get_text_config()
    for kind, name in (("model", config.model_type), ("text model", text.model_type)):
        if name not in SUPPORTED_MODEL_TYPES + SUPPORTED_TEXT_TYPES:
            raise ConfigError(
                f"share_prompt_forward supports the model types "
                f"{', '.join(SUPPORTED_MODEL_TYPES)}; this {kind} is {name!r}: "
                "set share_prompt_forward false",
                key="share_prompt_forward",
            )
    dropout = {key: getattr(text, key) for key in DROPOUT_KEYS if getattr(text, key, 0) or 0}
    if dropout:
        raise ConfigError(
            f"share_prompt_forward equals the stock forward only without dropout; the text "
            f"model has {dropout}: set share_prompt_forward false",
            key="share_prompt_forward",
        )


def check_engine(zero_stage: int | None) -> None:
    """Raise ``ConfigError`` under DeepSpeed ZeRO-3 (``zero_stage`` 3): its LM head is
    partitioned and only gathered inside the head's own forward, which this path bypasses
    (TRL's kernel would then read an empty weight). FSDP2 is handled in `_score`."""
    if zero_stage == 3:
        raise ConfigError(
            "share_prompt_forward reads the LM head's weight directly, which DeepSpeed ZeRO-3 "
            "partitions: use ZeRO-2 or FSDP, or set share_prompt_forward false",
            key="share_prompt_forward",
        )


def prompt_groups(
    prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, images: list[RowImages]
) -> list[list[int]]:
    """The rows of each distinct (prompt tokens, images), in order of first appearance (TRL
    shuffles a round's completions, so a group's rows need not be adjacent).
    ``prompt_ids``, ``prompt_mask`` ``(B, P)``; ``images[i]``: row i's images."""
    groups: list[list[int]] = []
    for row in range(prompt_ids.size(0)):
        for group in groups:
            first = group[0]
            if (
                torch.equal(prompt_ids[row], prompt_ids[first])
                and torch.equal(prompt_mask[row], prompt_mask[first])
                and images[row].same_as(images[first])
            ):
                group.append(row)
                break
        else:
            groups.append([row])
    return groups


@dataclass
class RowImages:
    """One row's images: ``pixels`` (its slice of the batch's pixel values; 0 elements when
    it has none) and, for Qwen-VL models, ``grid`` ``(n_images, 3)`` (t, h, w patches)."""

    pixels: torch.Tensor
    grid: torch.Tensor | None = None

    def same_as(self, other: RowImages) -> bool:
        grids_equal = (self.grid is None) == (other.grid is None) and (
            self.grid is None or torch.equal(self.grid, other.grid)
        )
        return grids_equal and torch.equal(self.pixels, other.pixels)  # False: shapes differ

    def inputs(self) -> dict:
        """The model's image keyword arguments for this row alone."""
        if not self.pixels.numel():
            return {}
        extra = {"pixel_values": self.pixels}
        return extra if self.grid is None else {**extra, "image_grid_thw": self.grid}


def images_per_row(
    pixel_values: torch.Tensor | None,
    num_images: list[int] | None,
    rows: int,
    image_grid_thw: torch.Tensor | None = None,
) -> list[RowImages]:
    """Each row's images. ``pixel_values`` stacks the images along dim 0: one entry per
    image, or with ``image_grid_thw`` ``(n_images, 3)`` (Qwen-VL) ``t * h * w`` patch rows
    per image. One image per row when ``num_images`` is None."""
    if pixel_values is None:
        return [RowImages(torch.zeros(0)) for _ in range(rows)]
    counts = num_images if num_images is not None else [1] * rows
    image_bounds = [0, *torch.tensor(counts).cumsum(0).tolist()]
    if image_grid_thw is None:
        return [RowImages(pixel_values[a:b]) for a, b in itertools.pairwise(image_bounds)]
    patch_bounds = [0, *image_grid_thw.prod(-1).cumsum(0).tolist()]
    return [
        RowImages(pixel_values[patch_bounds[a] : patch_bounds[b]], image_grid_thw[a:b])
        for a, b in itertools.pairwise(image_bounds)
    ]


def mrope_positions(
    backbone, prompt: torch.Tensor, types: torch.Tensor, images: RowImages, completions: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """M-RoPE positions of one prompt ``(1, P)`` and of the ``completions`` ``T`` tokens
    that follow it: ``(3, 1, P)`` from ``get_rope_index`` (``types`` ``(1, P)``: 0 text,
    1 image), and ``(3, 1, T)`` = ``P + delta + t`` on every axis."""
    positions, delta = backbone.get_rope_index(prompt, types, image_grid_thw=images.grid)
    after = prompt.size(1) + delta + torch.arange(completions, device=prompt.device)
    return positions, after.view(1, 1, -1).expand(3, 1, -1)


def completion_log_probs(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    pixel_values: torch.Tensor | None = None,
    num_images: list[int] | None = None,
    image_grid_thw: torch.Tensor | None = None,
    mm_token_type_ids: torch.Tensor | None = None,
    temperature: float = 1.0,
    compute_entropy: bool = False,
    cast_lm_head_to_fp32: bool = False,
) -> SharedPromptOutput:
    """Log-probabilities ``(B, T)`` of the last ``T = logits_to_keep`` tokens of
    ``input_ids`` ``(B, P + T)`` (left-padded prompts, right-padded completions, as TRL
    concatenates them), each group's prompt run once. ``model``: the (unwrapped) causal LM.
    M-RoPE models: ``image_grid_thw`` ``(n_images, 3)`` and ``mm_token_type_ids``
    ``(B, P + T)`` (derived from the image token when not given)."""
    prompt_ids, completion_ids = input_ids[:, :-logits_to_keep], input_ids[:, -logits_to_keep:]
    prompt_mask = attention_mask[:, :-logits_to_keep]
    completion_mask = attention_mask[:, -logits_to_keep:].bool()
    images = images_per_row(pixel_values, num_images, input_ids.size(0), image_grid_thw)
    backbone = model.base_model
    mrope = model.config.model_type in MROPE_MODEL_TYPES
    if mrope and mm_token_type_ids is None:
        mm_token_type_ids = (input_ids == model.config.image_token_id).int()
    lm_head = model.get_output_embeddings()
    log_probs, entropies = [], []
    groups = prompt_groups(prompt_ids, prompt_mask, images)
    for rows in groups:
        first, size = rows[0], len(rows)
        real = prompt_mask[first].bool()  # left padding dropped: rope sees relative positions
        prompt = prompt_ids[first, real].unsqueeze(0)
        completions, valid = completion_ids[rows], completion_mask[rows]
        extra, rest_extra = images[first].inputs(), {}
        if mrope:
            types = mm_token_type_ids[first, : prompt_mask.size(1)][real].unsqueeze(0)
            positions, after = mrope_positions(
                backbone, prompt, types, images[first], completions.size(1)
            )
            extra["position_ids"] = positions
            rest_extra["position_ids"] = after.expand(3, size, -1)
        opened = backbone(input_ids=prompt, use_cache=True, **extra)
        cache = opened.past_key_values
        cache.batch_repeat_interleave(size)
        mask = torch.cat([valid.new_ones(size, prompt.size(1)), valid], dim=1).long()
        rest = backbone(
            input_ids=completions,
            attention_mask=mask,
            past_key_values=cache,
            use_cache=True,
            **rest_extra,
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
    ``(N, H)`` through the LM head, in vocabulary tiles (TRL's kernel). Under FSDP2 the
    head's weight is a sharded ``DTensor``: gathered whole first, as TRL's fused head does."""
    context = nullcontext()
    if cast_lm_head_to_fp32:
        hidden = hidden.float()
        context = torch.autocast(hidden.device.type, enabled=False)
    weight, bias = lm_head.weight, lm_head.bias
    if isinstance(weight, DTensor):
        weight = weight.full_tensor()
        bias = bias.full_tensor() if bias is not None else None
    outputs = ("log_probs", "entropy") if compute_entropy else ("log_probs",)
    with context:
        log_probs, entropy, *_ = ChunkedLogProbFunction.apply(
            hidden,
            weight,
            bias,
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
    check_supported(model.config)
    previous = model.forward

    @functools.wraps(type(model).forward)
    def forward(self, *args, shared_prompt=False, **kwargs):
        if not shared_prompt:
            return previous(*args, **kwargs)
        return completion_log_probs(
            self, temperature=temperature, cast_lm_head_to_fp32=cast_lm_head_to_fp32, **kwargs
        )

    model.forward = types.MethodType(forward, model)
