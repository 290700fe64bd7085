"""Global Contrast Decompression Task (GCT): InfoNCE between the LM's response state and
the target item's exogenous (semantic and behaviour) embeddings.

The response state ``h`` (last hidden layer at the response's EOS) is L2-normalised and
mapped by a Decompression Guidance Projector (one linear layer) into an embedding space.
With ``z = normalize(P(normalize(h)))``, candidate embeddings L2-normalised and cosine
similarity ``s``, the loss of batch row ``b`` is

    -log( exp(s(z_b, t_b) / tau) / (sum_j exp(s(z_b, t_j) / tau) + sum_n exp(s(z_b, n) / tau)) )

over the batch targets ``t_j`` (in-batch negatives; a column naming the same item as row
``b`` is left out unless it is ``b`` itself) and the sampled catalogue negatives ``n``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def gct_infonce(
    hidden: torch.Tensor,
    projector: nn.Module,
    targets: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float = 0.1,
    target_items: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean InfoNCE loss (scalar).

    hidden: (B, H) response states; projector: (..., H) -> (..., D); targets: (B, D) the
    positives, also the in-batch negatives of the other rows; negatives: (N, D), N >= 0;
    target_items: LongTensor (B,) item of each target, masking in-batch duplicates.
    """
    z = F.normalize(projector(F.normalize(hidden, dim=-1)), dim=-1)
    candidates = F.normalize(torch.cat([targets, negatives]), dim=-1)
    logits = z @ candidates.T / temperature  # (B, B + N)
    rows = torch.arange(len(hidden), device=hidden.device)
    if target_items is not None:
        duplicate = target_items[:, None] == target_items[None, :]
        duplicate[rows, rows] = False
        mask = F.pad(duplicate, (0, len(negatives)))
        logits = logits.masked_fill(mask, float("-inf"))
    return F.cross_entropy(logits, rows)


def sample_negatives(
    n_items: int, exclude: torch.Tensor, count: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """LongTensor (min(count, available),) of distinct items in ``0..n_items-1`` outside
    ``exclude`` (LongTensor (k,)), uniformly at random (torch's global RNG by default)."""
    order = torch.randperm(n_items, generator=generator)
    return order[~torch.isin(order, exclude.cpu())][:count]


class GCTHead(nn.Module):
    """The two Decompression Guidance Projectors and the item embedding tables they target.

    The tables are non-persistent buffers: ``state_dict()`` holds only the projectors
    (``semantic.*``, ``behaviour.*``), which is what ``projectors.safetensors`` stores.

    Args:
        hidden_size: H, the LM's hidden size.
        semantic: (n_items, D_s) semantic embedding of each item.
        behaviour: (n_items, D_b) behaviour embedding of each item.
        negatives: catalogue negatives sampled per batch (shared by its rows).
    """

    def __init__(
        self,
        hidden_size: int,
        semantic: torch.Tensor,
        behaviour: torch.Tensor,
        *,
        temperature: float = 0.1,
        negatives: int = 2048,
    ) -> None:
        super().__init__()
        if len(semantic) != len(behaviour):
            raise ValueError(f"{len(semantic)} semantic but {len(behaviour)} behaviour rows")
        self.semantic = nn.Linear(hidden_size, semantic.shape[1])
        self.behaviour = nn.Linear(hidden_size, behaviour.shape[1])
        self.register_buffer("semantic_table", semantic.float(), persistent=False)
        self.register_buffer("behaviour_table", behaviour.float(), persistent=False)
        self.temperature = temperature
        self.negatives = negatives

    def forward(self, hidden: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(semantic loss, behaviour loss) of ``hidden`` (B, H) whose targets are ``items`` (B,).

        One set of catalogue negatives, excluding every target of the batch, serves both."""
        negatives = sample_negatives(len(self.semantic_table), items, self.negatives)
        negatives = negatives.to(items.device)
        hidden = hidden.float()
        losses = []
        for projector, table in (
            (self.semantic, self.semantic_table),
            (self.behaviour, self.behaviour_table),
        ):
            losses.append(
                gct_infonce(
                    hidden, projector, table[items], table[negatives], self.temperature, items
                )
            )
        return tuple(losses)
