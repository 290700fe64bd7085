"""Initial embedding rows of new index tokens: what each code stands for, not one shared mean.

``title`` init (the default): the row of token ``t`` is the mean, over the items whose index
contains ``t``, of the mean embedding row of the item's title tokens; the result is rescaled
to the mean L2 norm of the existing vocabulary rows. Items that share a code therefore start
near each other, distinct codes start apart, and an untrained model already scores items
differently. ``mean`` init (the earlier behaviour) gives every new row the vocabulary mean,
so all items tie until training moves the rows apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

INITS = ("title", "mean")


def code_members(item_index: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Index token -> the items whose index contains it (item order)."""
    members: dict[str, list[str]] = {}
    for item_id, tokens in item_index.items():
        for tok in tokens:
            members.setdefault(tok, []).append(item_id)
    return members


def title_rows(
    matrix: torch.Tensor,
    title_ids: Mapping[str, Sequence[int]],
    members: Mapping[str, Sequence[str]],
    tokens: Sequence[str],
) -> torch.Tensor:
    """Rows for ``tokens``: (len(tokens), H) from the vocabulary ``matrix`` (V, H).

    ``title_ids``: item id -> token ids of its title (an item without any counts as the
    vocabulary mean). Each row is the mean of its items' mean title rows, scaled to the mean
    row norm of ``matrix``.
    """
    matrix = matrix.detach().float()
    vocabulary_mean = matrix.mean(0)
    target_norm = matrix.norm(dim=1).mean()

    def item_vector(item_id: str) -> torch.Tensor:
        ids = list(title_ids.get(item_id, ()))
        return matrix[ids].mean(0) if ids else vocabulary_mean

    cache: dict[str, torch.Tensor] = {}
    rows = []
    for tok in tokens:
        vectors = [cache.setdefault(i, item_vector(i)) for i in members[tok]]
        row = torch.stack(vectors).mean(0)
        rows.append(row * target_norm / row.norm().clamp_min(1e-12))
    return torch.stack(rows)
