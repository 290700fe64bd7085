"""Leave-one-out split of time-ordered user sequences (the EAGER-LLM protocol).

For a user sequence ``s`` (time order, at least three items): the training sequence is
``s[:-2]``, the validation example predicts ``s[-2]`` from the training items and the test example
predicts ``s[-1]`` from the training items plus ``s[-2]``. Histories keep their last
``max_history`` items. All items and users are indices of the :class:`Interactions` split.

Events of a user with equal timestamps are ordered by file row (``tie_order="file"``, the
default) or by its reverse (``"reversed"``). Where a user's last two events share a time the
order decides which item is the validation target and which the test target (on
MovieLens-100K, for 44 % of the users: ``results/eager_tie_order.md``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .schema import Interactions, check_tie_order

MIN_LENGTH = 3  # one training, one validation and one test item


class Example(NamedTuple):
    """Predict ``target`` for ``user`` from ``history`` (oldest first)."""

    user: int
    history: tuple[int, ...]
    target: int


@dataclass(frozen=True)
class LeaveOneOut:
    """Training sequences and validation/test examples, one of each per user.

    Attributes:
        train: per user index, the training item indices in time order.
        valid: per user, the second-to-last item predicted from ``train``.
        test: per user, the last item predicted from ``train`` plus the validation target.
        max_history: the longest history an example (or training example) keeps.
    """

    train: list[np.ndarray]
    valid: list[Example]
    test: list[Example]
    max_history: int

    def train_examples(self) -> Iterator[Example]:
        """Next-item examples inside each training sequence: every item after the first is a
        target, its history the items before it. Targets are training items only, so no
        validation or test target is ever a label."""
        for user, sequence in enumerate(self.train):
            items = sequence.tolist()
            for end in range(1, len(items)):
                history = items[max(0, end - self.max_history) : end]
                yield Example(user, tuple(history), items[end])


def short_users(interactions: Interactions) -> list[str]:
    """String ids of the users with fewer than ``MIN_LENGTH`` interactions."""
    counts = np.bincount(interactions.users, minlength=interactions.n_users)
    return interactions.user_ids[counts < MIN_LENGTH].tolist()


def short_users_error(user_ids: list[str]) -> ValueError:
    """The error for users too short to split, naming how many and the first few."""
    shown = ", ".join(map(repr, user_ids[:5])) + (", ..." if len(user_ids) > 5 else "")
    return ValueError(
        f"{len(user_ids)} users have fewer than {MIN_LENGTH} interactions and cannot be split "
        f"into train/valid/test ({shown}); pass skip_invalid=True to drop them"
    )


def leave_one_out(
    interactions: Interactions, *, max_history: int = 20, tie_order: str = "file"
) -> LeaveOneOut:
    """Split every user's time-ordered sequence (equal times: ``tie_order``, ``"file"`` or
    ``"reversed"``); raises if a user has < ``MIN_LENGTH`` items."""
    check_tie_order(tie_order)
    if max_history < 1:
        raise ValueError(f"max_history must be >= 1, got {max_history}")
    if short := short_users(interactions):
        raise short_users_error(short)
    train, valid, test = [], [], []
    for user, sequence in enumerate(interactions.sequences(tie_order)):
        items = sequence.tolist()
        train.append(sequence[:-2])
        valid.append(Example(user, tuple(items[:-2][-max_history:]), items[-2]))
        test.append(Example(user, tuple(items[:-1][-max_history:]), items[-1]))
    return LeaveOneOut(train, valid, test, max_history)
