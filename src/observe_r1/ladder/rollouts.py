"""Batched generation with one vision-language model: the builder's only model code.

`RolloutEngine.generate` answers a batch of (messages, row images) prompts with ``n`` responses
each (prompts left-padded; each prefilled once and its cache shared by its ``n`` responses,
`observe_r1.evaluation.generation`). The model loads on first use, so a builder whose rollouts are
all cached never loads it.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForImageTextToText

from model_zoo import resolve
from model_zoo.cache import file_sha256
from model_zoo.hardware import resolve_precision
from model_zoo.processors import load_processor
from observe_r1.data.rows import InputError
from observe_r1.evaluation.evaluate import open_images, row_conversation
from observe_r1.evaluation.generation import Decoding, generate_ids, stop_ids

Messages = list[dict[str, Any]]

ANSWER_ONLY_PROMPT = (
    "Look at the image and answer the question. Reply with only the final answer inside "
    "<answer> </answer>, with no explanation."
)


def answer_only_messages(row: dict[str, Any]) -> Messages:
    """Chat messages asking for the row's final answer alone (the simple-question filter);
    options lettered as `observe_r1.evaluation.evaluate.question_and_gold` asks them."""
    messages = row_conversation(row, "observe")
    messages[0] = {"role": "system", "content": [{"type": "text", "text": ANSWER_ONLY_PROMPT}]}
    return messages


def step_by_step_messages(row: dict[str, Any]) -> Messages:
    """Chat messages with the observe/think/answer system prompt (the scoring rollouts)."""
    return row_conversation(row, "observe")


@dataclass(frozen=True)
class Sampling:
    """Generation settings of one pass; part of every cache key."""

    n: int
    do_sample: bool
    max_new_tokens: int
    temperature: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def decoding(self) -> Decoding:
        """Pure temperature sampling (no top-k / top-p truncation), or greedy."""
        return Decoding(self.n, self.max_new_tokens, self.do_sample, self.temperature, top_k=0)


@dataclass(frozen=True)
class Completion:
    """One response: its text and its length in tokens (EOS included, as the trainer counts)."""

    text: str
    tokens: int


class RolloutEngine:
    """A zoo name, hub id or folder, loaded lazily on ``device`` (CUDA when available).
    ``shared_prefix=False``: plain ``model.generate`` (each prompt copied ``n`` times).
    ``precision``: ``"fp32"``, ``"bf16"`` autocast or ``"auto"`` (bf16 where it pays,
    `model_zoo.hardware.resolve_precision`); part of `model_id`, so of every cache key."""

    def __init__(
        self,
        model: str,
        *,
        device: str | None = None,
        shared_prefix: bool = True,
        precision: str = "auto",
    ):
        self.model_name = model
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.shared_prefix = shared_prefix
        self.precision = resolve_precision(precision, torch.device(self.device).type)
        self.model = None
        self.processor = None

    @cached_property
    def model_id(self) -> str:
        """The model's identity in cache keys: its name and the SHA-256 of every local file,
        so a rebuilt or retrained model never reuses old rollouts (hashing reads the weights
        once, ~1 s per GB), a hub id that is not on disk as is; then the precision the
        rollouts are generated in, when not fp32."""
        suffix = "" if self.precision == "fp32" else f"/{self.precision}"
        folder = Path(resolve(self.model_name))
        if not folder.is_dir():
            return self.model_name + suffix
        digest = hashlib.sha256()
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(f"{path.relative_to(folder)}:{file_sha256(path)}\n".encode())
        return f"{self.model_name}@{digest.hexdigest()[:16]}{suffix}"

    def load(self) -> None:
        try:
            self._load()
        except (OSError, ValueError, RuntimeError) as error:
            raise InputError(f"--model {self.model_name}: cannot load it ({error})") from None

    def _load(self) -> None:
        folder = resolve(self.model_name)
        self.processor = load_processor(folder)
        tokenizer = self.processor.tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:  # batched prompts need padding
            tokenizer.pad_token = tokenizer.eos_token
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        model = AutoModelForImageTextToText.from_pretrained(folder, dtype=dtype)
        self.model = model.to(self.device).eval()

    def generate(
        self, prompts: list[Messages], rows: list[dict[str, Any]], sampling: Sampling
    ) -> list[list[Completion]]:
        """``sampling.n`` completions for each (messages, row), in prompt order; each prompt
        holds one placeholder per image of its row (`row_images`)."""
        if self.model is None:
            self.load()
        texts = [
            self.processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
            for m in prompts
        ]
        pictures = open_images(rows)  # None for a batch of text-only rows
        inputs = self.processor(text=texts, images=pictures, padding=True, return_tensors="pt")
        tokenizer = self.processor.tokenizer
        trimmed = generate_ids(
            self.model,
            inputs.to(self.device),
            sampling.decoding(),
            stop_ids(self.model, tokenizer),
            tokenizer.pad_token_id,
            shared_prefix=self.shared_prefix,
            precision=self.precision,
        )
        decoded = self.processor.batch_decode(trimmed, skip_special_tokens=True)
        flat = [Completion(text, len(ids)) for text, ids in zip(decoded, trimmed, strict=True)]
        return [flat[i : i + sampling.n] for i in range(0, len(flat), sampling.n)]
