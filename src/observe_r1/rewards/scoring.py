"""Observe-R1 rewards for one completion, and TRL-style reward callables built on them.

- `format_reward`: ``value`` (0.5) if the completion has the required tag layout, else 0.0.
- `accuracy_reward`: 1.0 if the single ``<answer>`` block matches the gold answer, else 0.0
  (rules in `observe_r1.rewards.answer_match`).
- `make_format_reward`, `make_accuracy_reward`: ``(prompts, completions, answer, **kw) ->
  list[float]`` callables named "format" and "accuracy", for plain-text or conversational
  completions (lists of ``{"role": ..., "content": ...}`` messages).

Every call is bounded whatever the model wrote: the format check is linear in the text, answers
longer than `MAX_ANSWER_CHARS` are refused, and math-verify runs in a worker process that is
killed after `VERIFY_TIMEOUT_S`. Timeouts and refusals score 0 and are counted in
``observe_r1.rewards.safe_verify.stats`` (also reachable as ``make_accuracy_reward().stats``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, Literal

from observe_r1.rewards.answer_match import answers_match
from observe_r1.rewards.safe_verify import start_workers, stats

FORMAT_VALUE = 0.5
OBSERVE_THINK_ANSWER = ("observe", "think", "answer")
THINK_ANSWER = ("think", "answer")
MAX_FORMAT_TAGS = 64
MAX_ANSWER_CHARS = 1000
VERIFY_TIMEOUT_S = 0.8

Compat = Literal["strict", "official"]
Completion = str | list[dict[str, Any]]
RewardFunc = Callable[..., list[float]]


def _once(tag: str) -> str:
    """Lookaheads: `tag` occurs exactly once in the text (when matched at its start)."""
    return rf"(?=.*{tag})(?!.*{tag}.*{tag})"


def _official_pattern(tags: tuple[str, ...]) -> str:
    uniqueness = "^" + "".join(_once(f"<{slash}{tag}>") for tag in tags for slash in ("", "/"))
    answer = r"\s*<answer>.+?</answer>"
    if tags == THINK_ANSWER:
        return uniqueness + r".*<think>.+?</think>" + answer
    if tags == OBSERVE_THINK_ANSWER:
        sequential = r".*<observe>.+?</observe>\s*<think>.+?</think>" + answer
        nested = r"<think>.+?<observe>.+?</observe>.+?</think>" + answer
        return uniqueness + sequential + "|" + nested  # the lookaheads bind to `sequential` only
    raise ValueError(f"compat='official' exists for {OBSERVE_THINK_ANSWER} and {THINK_ANSWER} only")


@cache
def _format_pattern(compat: Compat, tags: tuple[str, ...]) -> re.Pattern[str]:
    if compat == "strict":
        blocks = r"\s*".join(f"<{tag}>x</{tag}>" for tag in map(re.escape, tags))
        return re.compile(rf"\A\s*{blocks}\s*\Z")
    if compat == "official":
        return re.compile(_official_pattern(tags), re.DOTALL)
    raise ValueError(f"compat must be 'strict' or 'official', not {compat!r}")


@cache
def _tag_splitter(tags: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("(</?(?:" + "|".join(map(re.escape, tags)) + ")>)")


def _skeleton(text: str, tags: tuple[str, ...]) -> str | None:
    """`text` with each stretch between tags shrunk to one character, or None if over-tagged.

    A stretch becomes "" if empty, " " if blank, "x" if it has content. The format patterns only
    ask which of the three a stretch is, so they give the same verdict on the skeleton, whose
    length is bounded by `MAX_FORMAT_TAGS` instead of by the text: no regex backtracking on 1 MB.
    """
    pieces = _tag_splitter(tags).split(text)  # stretch, tag, stretch, ..., stretch
    if len(pieces) > 2 * MAX_FORMAT_TAGS + 1:
        return None
    return "".join(
        piece if index % 2 else " " if piece.isspace() else "x" if piece else ""
        for index, piece in enumerate(pieces)
    )


def format_reward(
    completion: str,
    *,
    value: float = FORMAT_VALUE,
    compat: Compat = "strict",
    tags: tuple[str, ...] = OBSERVE_THINK_ANSWER,
) -> float:
    """`value` if `completion` has the tag layout below, else 0.0.

    ``compat="strict"`` (default): exactly one ``<tag>...</tag>`` block per tag, in the order of
    `tags`, each with non-blank content, and nothing but whitespace before, between and after
    them. ``tags=THINK_ANSWER`` selects the GRPO baseline's layout,
    ``<think>...</think><answer>...</answer>``.

    ``compat="official"`` reproduces the public Observe-R1 regex (``re.search``, DOTALL): each
    tag once, then ``<observe>.+?</observe>\\s*<think>.+?</think>\\s*<answer>.+?</answer>``
    anywhere in the text (leading and trailing text pass, blank content passes), OR observe
    nested inside think: ``<think>.+?<observe>.+?</observe>.+?</think>\\s*<answer>.+?</answer>``;
    its "each tag once" lookaheads bind to the first alternative only, so the nested form also
    passes with repeated tags. With ``tags=THINK_ANSWER`` it is the public think/answer regex.

    In both modes a completion with more than `MAX_FORMAT_TAGS` tags scores 0.0.
    """
    skeleton = _skeleton(completion, tags)
    matched = skeleton is not None and _format_pattern(compat, tags).search(skeleton)
    return value if matched else 0.0


def extract_answer(completion: str) -> str | None:
    """The stripped content of the single ``<answer>...</answer>`` block, or None.

    None unless `completion` holds exactly one ``<answer>`` and one ``</answer>``, in that order.
    (The public code fell back to the text after the last ``<answer>``, so unclosed or missing
    answer blocks could still be scored.)
    """
    if completion.count("<answer>") != 1 or completion.count("</answer>") != 1:
        return None
    start = completion.index("<answer>") + len("<answer>")
    end = completion.index("</answer>")
    return completion[start:end].strip() if start <= end else None


def accuracy_reward(completion: str, answer: str, *, timeout_s: float = VERIFY_TIMEOUT_S) -> float:
    """1.0 if the completion's answer block matches the gold `answer`, else 0.0.

    No (single) answer block, an empty one, an answer over `MAX_ANSWER_CHARS` (counted in
    ``stats.oversized``) or a math-verify timeout (``stats.timeouts``) all score 0.0.
    """
    prediction = extract_answer(completion)
    if not prediction:
        return 0.0
    if len(prediction) > MAX_ANSWER_CHARS:
        stats.oversized += 1
        return 0.0
    return float(answers_match(answer, prediction, timeout_s))


def completion_text(completion: Completion) -> str:
    """A plain completion as is; a conversational one as the text of its last message."""
    if isinstance(completion, str):
        return completion
    content = completion[-1]["content"] if completion else ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)  # multimodal content parts


def make_format_reward(
    value: float = FORMAT_VALUE,
    compat: Compat = "strict",
    tags: tuple[str, ...] = OBSERVE_THINK_ANSWER,
) -> RewardFunc:
    """A TRL reward function named "format": `format_reward` of each completion."""
    _format_pattern(compat, tags)  # reject bad settings now, not at the first batch

    def reward(prompts: Any, completions: Sequence[Completion], **kwargs: Any) -> list[float]:
        return [
            format_reward(completion_text(completion), value=value, compat=compat, tags=tags)
            for completion in completions
        ]

    reward.__name__ = reward.__qualname__ = "format"
    return reward


def make_accuracy_reward(timeout_s: float = VERIFY_TIMEOUT_S) -> RewardFunc:
    """A TRL reward function named "accuracy": `accuracy_reward` of each completion vs `answer`.

    Its ``stats`` attribute is the shared `VerifyStats` (timeouts, oversized answers) to log.
    Starts the math-verify workers in the background, so they are warm by the first batch.
    """
    start_workers()

    def reward(
        prompts: Any, completions: Sequence[Completion], answer: Sequence[Any], **kwargs: Any
    ) -> list[float]:
        return [
            accuracy_reward(completion_text(completion), str(gold), timeout_s=timeout_s)
            for completion, gold in zip(completions, answer, strict=True)
        ]

    reward.__name__ = reward.__qualname__ = "accuracy"
    reward.stats = stats  # type: ignore[attr-defined]
    return reward
