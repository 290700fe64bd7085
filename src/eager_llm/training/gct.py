"""Global Contrast Decompression Task (GCT): InfoNCE between the LM's response state and
the target item's exogenous (semantic and behaviour) embeddings.

The response state ``h`` (last hidden layer at the response's EOS) is L2-normalised and
mapped by a Decompression Guidance Projector (one linear layer) into an embedding space.
With ``z = normalize(P(normalize(h)))``, candidate embeddings L2-normalised and cosine
similarity ``s``, the loss of batch row ``b`` is

    -log( exp(s(z_b, t_b) / tau) / (sum_j exp(s(z_b, t_j) / tau) + sum_n exp(s(z_b, n) / tau)) )

over the batch targets ``t_j`` (in-batch negatives; a column naming the same item as row
``b`` is left out unless it is ``b`` itself) and the sampled catalogue negatives ``n``.

Across processes the batch is the global batch: every process scores its own rows against
the targets of all processes' rows and one set of catalogue negatives (drawn on process 0,
excluding every global target), and backpropagates its share of the mean over all GCT rows
(:mod:`.ranks`), so the loss and its gradient are those of one process holding the whole
batch. Only item ids travel between processes; the embeddings are the item tables.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .ranks import from_first, gather_rows, share


def gct_infonce(
    hidden: torch.Tensor,
    projector: nn.Module,
    targets: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float = 0.1,
    target_items: torch.Tensor | None = None,
    offset: int = 0,
) -> torch.Tensor:
    """InfoNCE loss of each row, FloatTensor (B,).

    hidden: (B, H) response states; projector: (..., H) -> (..., D); targets: (C, D) the
    targets of the (global) batch, of which rows ``offset .. offset + B - 1`` are those of
    ``hidden`` (its positives) and all are in-batch negatives; negatives: (N, D), N >= 0;
    target_items: LongTensor (C,) item of each target, masking in-batch duplicates.
    """
    z = F.normalize(projector(F.normalize(hidden, dim=-1)), dim=-1)
    candidates = F.normalize(torch.cat([targets, negatives]), dim=-1)
    logits = z @ candidates.T / temperature  # (B, C + N)
    rows = torch.arange(len(hidden), device=hidden.device)
    positives = rows + offset
    if target_items is not None:
        duplicate = target_items[positives, None] == target_items[None, :]
        duplicate[rows, positives] = False
        mask = F.pad(duplicate, (0, len(negatives)))
        logits = logits.masked_fill(mask, float("-inf"))
    return F.cross_entropy(logits, positives, reduction="none")


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

    def forward(
        self, hidden: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(semantic loss, behaviour loss, n) of ``hidden`` (B, H) whose targets are ``items``
        (B,), B >= 0: each loss is this process's share of the mean over the ``n`` GCT rows of
        all processes (:func:`.ranks.share`; 0 when ``n`` is 0).

        One set of catalogue negatives, excluding every target of the global batch, serves
        both. A collective: every process calls it for every micro-batch."""
        batch, offset = gather_rows(items)
        negatives = sample_negatives(len(self.semantic_table), batch, self.negatives)
        negatives = from_first(negatives.to(items.device))
        hidden = hidden.float()
        losses = []
        for projector, table in (
            (self.semantic, self.semantic_table),
            (self.behaviour, self.behaviour_table),
        ):
            rows = gct_infonce(
                hidden, projector, table[batch], table[negatives], self.temperature, batch, offset
            )
            losses.append(share(rows.sum(), len(batch)))
        return losses[0], losses[1], len(batch)
