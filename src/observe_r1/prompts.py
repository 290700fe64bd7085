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


def conversation(question: str, response_format: ResponseFormat, *, with_image: bool = True):
    """The chat messages for one question: system prompt, then the image and the question."""
    content = [{"type": "text", "text": question}]
    if with_image:
        content.insert(0, {"type": "image"})
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPTS[response_format]}]},
        {"role": "user", "content": content},
    ]
