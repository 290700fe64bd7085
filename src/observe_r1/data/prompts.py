"""System prompts for the two response formats, and the conversational prompt of a row."""

from __future__ import annotations

from typing import Literal

ResponseFormat = Literal["observe", "think"]

OBSERVE_SYSTEM_PROMPT = (
    "You are a careful visual reasoner. First describe what you see in the image inside "
    "<observe> </observe>, then reason step by step inside <think> </think>, and finally give "
    "only the final answer inside <answer> </answer>. Use exactly this layout: "
    "<observe> ... </observe> <think> ... </think> <answer> ... </answer>"
)
THINK_SYSTEM_PROMPT = (
    "You are a careful visual reasoner. Reason step by step inside <think> </think>, then give "
    "only the final answer inside <answer> </answer>. Use exactly this layout: "
    "<think> ... </think> <answer> ... </answer>"
)
SYSTEM_PROMPTS: dict[str, str] = {"observe": OBSERVE_SYSTEM_PROMPT, "think": THINK_SYSTEM_PROMPT}
TAGS: dict[str, tuple[str, ...]] = {
    "observe": ("observe", "think", "answer"),
    "think": ("think", "answer"),
}


def conversation(
    question: str,
    response_format: ResponseFormat,
    *,
    with_image: bool = True,
    images: int | None = None,
):
    """The chat messages for one question: system prompt, then the row's image placeholders
    (``images`` of them, in order; default one, none with ``with_image=False``) and the
    question. A text-only row (``images=0``) has no image part at all."""
    count = (1 if with_image else 0) if images is None else images
    content = [{"type": "image"} for _ in range(count)] + [{"type": "text", "text": question}]
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPTS[response_format]}]},
        {"role": "user", "content": content},
    ]
