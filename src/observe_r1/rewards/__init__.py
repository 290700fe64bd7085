"""Rewards: the format and accuracy rewards of one completion (`scoring`), the answer
matching behind accuracy (`answer_match`) and math-verify in a killable worker (`safe_verify`).

The reward API is importable from here, as users' reward code has done since the package was
one module (``from observe_r1.rewards import accuracy_reward``).
"""

from observe_r1.rewards.scoring import (
    FORMAT_VALUE,
    MAX_ANSWER_CHARS,
    MAX_FORMAT_TAGS,
    OBSERVE_THINK_ANSWER,
    THINK_ANSWER,
    VERIFY_TIMEOUT_S,
    Compat,
    Completion,
    RewardFunc,
    accuracy_reward,
    completion_text,
    extract_answer,
    format_reward,
    make_accuracy_reward,
    make_format_reward,
)

__all__ = [
    "FORMAT_VALUE",
    "MAX_ANSWER_CHARS",
    "MAX_FORMAT_TAGS",
    "OBSERVE_THINK_ANSWER",
    "THINK_ANSWER",
    "VERIFY_TIMEOUT_S",
    "Compat",
    "Completion",
    "RewardFunc",
    "accuracy_reward",
    "completion_text",
    "extract_answer",
    "format_reward",
    "make_accuracy_reward",
    "make_format_reward",
]
