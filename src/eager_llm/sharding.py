"""Decoding the users of a split on several processes (``accelerate launch``).

Every process forms the batches one process would (users sorted by prompt length, cut
every ``batch_size``), decodes every ``world``-th of them from its ``rank`` (:func:`deal`),
and the per-user results are gathered and put back in user order (:func:`merge`). A batch
is the same tensor on any number of processes, so the rankings equal one process's
(same device, dtype and thread count).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """This process's place: ``rank`` among ``world`` processes."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current_shard(device: str = "auto") -> tuple[Shard, str]:
    """This process's shard and device (``cuda:<local rank>`` on GPUs, else ``cpu``) from
    the launcher's environment (``accelerate launch``, ``torchrun``: gloo on CPUs, NCCL on
    GPUs); one process and its default device when not launched. ``device`` ``"cpu"``:
    the CPU even where there is a GPU."""
    import torch
    from accelerate import PartialState

    cpu = device == "cpu" or not torch.accelerator.is_available()
    state = PartialState(cpu=cpu)  # else no CPU group
    return Shard(state.process_index, state.num_processes), str(state.device)


def deal(batches: Sequence[T], shard: Shard) -> list[T]:
    """The batches this shard decodes: every ``world``-th, from ``rank``."""
    return list(batches[shard.rank :: shard.world])


def gather(local: Mapping[int, T], shard: Shard) -> list[Mapping[int, T]]:
    """Every process's ``{user: result}`` (a collective: all processes call it)."""
    if shard.world == 1:
        return [local]
    from accelerate.utils import gather_object

    return gather_object([dict(local)])


def merge(parts: Sequence[Mapping[int, T]], n_users: int) -> list[T]:
    """The results of users ``0 .. n_users - 1`` from the processes' parts; raises
    ``ValueError`` when a user is missing or decoded twice."""
    merged: dict[int, T] = {}
    for part in parts:
        if twice := merged.keys() & part.keys():
            raise ValueError(f"user {min(twice)} was decoded by two processes")
        merged.update(part)
    if missing := set(range(n_users)) - merged.keys():
        raise ValueError(f"{len(missing)} users were not decoded (first: {min(missing)})")
    return [merged[user] for user in range(n_users)]
