"""GCT InfoNCE on hand-computable cases, negative sampling, the projector head."""

import math

import pytest
import torch
from torch import nn

from eager_llm.training import GCTHead, gct_infonce, sample_negatives

EYE = torch.eye(2)


def identity() -> nn.Linear:
    projector = nn.Linear(2, 2, bias=False)
    projector.weight.data = torch.eye(2)
    return projector


def test_two_by_two_identity():
    # logits = I / 1: each row's positive scores 1, the other target 0.
    loss = gct_infonce(EYE, identity(), EYE, torch.empty(0, 2), temperature=1.0)
    assert loss.tolist() == pytest.approx([math.log(1 + math.exp(-1))] * 2)
    assert loss.mean().item() == pytest.approx(math.log(1 + math.exp(-1)))


def test_temperature_negatives_and_normalisation():
    hidden = torch.tensor([[3.0, 0.0], [0.0, 0.5]])  # normalised to the identity rows
    negatives = torch.tensor([[-2.0, 0.0]])  # cosine -1 with row 0, 0 with row 1
    loss = gct_infonce(hidden, identity(), 2 * EYE, negatives, temperature=0.5)
    row0 = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-2)))
    row1 = -math.log(math.exp(2) / (math.exp(2) + 1 + 1))
    assert loss.tolist() == pytest.approx([row0, row1])


def test_in_batch_duplicates_are_not_negatives():
    hidden = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # both rows want the same item
    negatives = torch.tensor([[0.0, 1.0]])
    loss = gct_infonce(hidden, identity(), targets, negatives, 1.0, torch.tensor([4, 4]))
    assert loss.tolist() == pytest.approx([-math.log(math.e / (math.e + 1))] * 2)
    unmasked = gct_infonce(hidden, identity(), targets, negatives, 1.0)
    assert unmasked.tolist() == pytest.approx([-math.log(math.e / (2 * math.e + 1))] * 2)


def test_rows_of_a_larger_batch_score_as_in_it():
    # Rows 2..3 of a batch of 4 (their targets at offset 2): the losses of those rows of the
    # whole batch, in-batch negatives and duplicates (item 7 in rows 0 and 2) included.
    torch.manual_seed(0)
    hidden, targets, negatives = torch.randn(4, 2), torch.randn(4, 2), torch.randn(3, 2)
    items = torch.tensor([7, 1, 7, 2])
    whole = gct_infonce(hidden, identity(), targets, negatives, 0.5, items)
    part = gct_infonce(hidden[2:], identity(), targets, negatives, 0.5, items, offset=2)
    assert torch.allclose(part, whole[2:])
    nothing = gct_infonce(hidden[:0], identity(), targets, negatives, 0.5, items, offset=4)
    assert nothing.shape == (0,)


def test_sample_negatives_excludes_targets():
    generator = torch.Generator().manual_seed(0)
    negatives = sample_negatives(10, torch.tensor([2, 5, 5]), 6, generator)
    assert len(negatives) == 6 and len(set(negatives.tolist())) == 6
    assert not {2, 5} & set(negatives.tolist())
    everything = sample_negatives(10, torch.tensor([2, 5]), 100, generator)
    assert sorted(everything.tolist()) == [0, 1, 3, 4, 6, 7, 8, 9]


def test_head_saves_only_projectors_and_gets_gradients():
    head = GCTHead(4, torch.randn(6, 3), torch.randn(6, 2), negatives=3)
    assert sorted(head.state_dict()) == [
        "behaviour.bias",
        "behaviour.weight",
        "semantic.bias",
        "semantic.weight",
    ]
    sem, beh, n = head(torch.randn(2, 4), torch.tensor([0, 1]))
    assert n == 2
    (sem + beh).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_head_without_rows_is_a_zero_with_projector_gradients():
    # A process whose micro-batch has no seqrec row: DDP still needs every parameter's grad.
    head = GCTHead(4, torch.randn(6, 3), torch.randn(6, 2), negatives=3)
    sem, beh, n = head(torch.randn(0, 4), torch.tensor([], dtype=torch.long))
    assert n == 0 and sem.item() == beh.item() == 0.0
    (sem + beh).backward()
    assert all(p.grad is not None and not p.grad.any() for p in head.parameters())
