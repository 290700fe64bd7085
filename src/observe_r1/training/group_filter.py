"""Dynamic sampling (DAPO's, verl's ``filter_groups``): which groups carry no signal, which
kept groups each process trains on, and the order the ladder's prompts are dealt in.

Pure: tensors and indices in, decisions out; the trainer's refill loop is the glue
(``ObserveR1Trainer._refilled_round``).
"""

from __future__ import annotations

import torch

DROP_RULES = ("all_correct", "all_wrong", "zero_variance")


def keep_groups(rewards: torch.Tensor, correct: torch.Tensor, drop: list[str]) -> torch.Tensor:
    """``(num_groups,)`` bool: the groups that meet none of the ``drop`` rules.

    ``rewards`` ``(num_groups, G)``: each completion's total reward (before the bonus),
    ``correct`` ``(num_groups, G)`` bool. ``all_correct`` / ``all_wrong``: every completion
    right / none; ``zero_variance``: all rewards of the group equal."""
    unknown = sorted(set(drop) - set(DROP_RULES))
    if unknown:
        raise ValueError(f"unknown drop rule {unknown[0]!r} (known: {', '.join(DROP_RULES)})")
    dropped = torch.zeros(rewards.shape[0], dtype=torch.bool, device=rewards.device)
    if "all_correct" in drop:
        dropped |= correct.all(dim=1)
    if "all_wrong" in drop:
        dropped |= ~correct.any(dim=1)
    if "zero_variance" in drop:
        dropped |= (rewards == rewards[:, :1]).all(dim=1)
    return ~dropped


def take_groups(keep: torch.Tensor, need: list[int]) -> tuple[torch.Tensor, list[int]]:
    """Each process's first ``need[r]`` kept groups of one generation pass.

    ``keep`` ``(world_size, groups_per_process)`` bool (process r's groups are row r) ->
    (``taken``, same shape, bool; what each process still needs after this pass)."""
    order = keep.long().cumsum(dim=1)  # rank of each kept group among its process's kept
    wanted = torch.tensor(need, device=keep.device).unsqueeze(1)
    taken = keep & (order <= wanted)
    return taken, [n - int(t) for n, t in zip(need, taken.sum(dim=1).tolist(), strict=True)]


class PromptOrder:
    """Dataset indices in the order the ladder is consumed, without end: file order
    (``shuffle`` False, the curriculum) or a new seeded permutation per pass over the rows.
    ``position`` (how many prompts were dealt) is the whole state: save it to resume."""

    def __init__(self, size: int, *, shuffle: bool, seed: int, position: int = 0):
        if size < 1:
            raise ValueError("no prompts to deal")
        self.size, self.shuffle, self.seed, self.position = size, shuffle, seed, position

    def _epoch(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(self.size, generator=generator).tolist()

    def take(self, count: int) -> list[int]:
        """The next ``count`` indices (wrapping to a new pass over the rows as needed)."""
        indices = []
        while len(indices) < count:
            epoch, offset = divmod(self.position, self.size)
            chunk = self._epoch(epoch)[offset : offset + count - len(indices)]
            indices += chunk
            self.position += len(chunk)
        return indices
