"""The global batch of data-parallel training: collectives over the processes' micro-batches.

Under DDP (and FSDP, DeepSpeed) every process holds one micro-batch of the global batch and
the gradients are averaged over the processes. A loss that is a mean over the items of the
global batch (labelled tokens, GCT rows) therefore has each process backpropagate its
:func:`share`: the sum over its own items times the number of processes, over the global
item count. The average of the shares is the global mean, and so is the average of their
gradients. With one process (or none launched) every function is the identity.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(this process's rank, number of processes); (0, 1) when not launched."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def total(count: torch.Tensor) -> torch.Tensor:
    """The sum of ``count`` (a scalar) over the processes (a collective: all call it)."""
    if world()[1] == 1:
        return count
    count = count.detach().clone()
    dist.all_reduce(count)
    return count


def share(local_sum: torch.Tensor, global_count: int) -> torch.Tensor:
    """This process's share of a mean over the global batch, ``local_sum * processes /
    global_count`` (0 when the global batch has no items; ``local_sum`` keeps its graph)."""
    return local_sum * world()[1] / max(global_count, 1)


def gather_rows(rows: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(every process's ``rows`` (B_r, ...) concatenated in rank order, the offset of this
    process's rows in it); the B_r may differ. No gradient flows through the gather."""
    rank, size = world()
    if size == 1:
        return rows, 0
    lengths = [torch.zeros((), dtype=torch.long, device=rows.device) for _ in range(size)]
    dist.all_gather(lengths, torch.tensor(len(rows), device=rows.device))
    lengths = [int(n) for n in lengths]
    padded = rows.new_zeros((max(lengths), *rows.shape[1:]))
    padded[: len(rows)] = rows.detach()
    parts = [torch.empty_like(padded) for _ in range(size)]
    dist.all_gather(parts, padded)
    gathered = torch.cat([part[:n] for part, n in zip(parts, lengths, strict=True)])
    return gathered, sum(lengths[:rank])


def from_first(tensor: torch.Tensor) -> torch.Tensor:
    """Process 0's ``tensor`` on every process (same shape and dtype everywhere)."""
    if world()[1] == 1:
        return tensor
    tensor = tensor.clone()
    dist.broadcast(tensor, src=0)
    return tensor
