"""Two gloo processes with half a batch each compute the loss and the gradients of one
process with the whole batch: LM tokens and GCT rows counted over both, in-batch GCT
targets gathered, the catalogue negatives those of process 0 (tiny-llama + GCT)."""

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from transformers import AutoModelForCausalLM

from eager_llm.training import EagerLLM, GCTHead
from model_zoo import resolve

T = 12
# Two micro-batches of 4 rows: the first with an item (3) that is a GCT target on both
# processes, the second with no GCT row on process 1 (rows 2, 3).
GCT_ROWS = ([True, True, True, False], [True, True, False, False])
ITEMS = ([3, 5, 3, 7], [1, 2, 4, 6])
LABELLED = (2, 6, 3, 1)  # labelled tokens per row: the processes hold 8 and 4


def model() -> EagerLLM:
    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_pretrained(resolve("tiny-llama"))
    gct = GCTHead(64, torch.randn(10, 8), torch.randn(10, 6), negatives=4)
    return EagerLLM(lm, gct, 0.1, 0.1)


def batch(step: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(step)
    input_ids = torch.randint(0, 256, (4, T), generator=generator)
    labels = torch.full((4, T), -100)
    for row, n in enumerate(LABELLED):
        labels[row, T - n :] = input_ids[row, T - n :]
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones(4, T, dtype=torch.long),
        "labels": labels,
        "eos_positions": torch.full((4,), T - 1),
        "target_items": torch.tensor(ITEMS[step]),
        "gct_rows": torch.tensor(GCT_ROWS[step]),
    }


def train(rows: slice, seed: int) -> tuple[list[dict[str, float]], dict[str, torch.Tensor]]:
    """Losses per micro-batch and the summed gradients of the two micro-batches' ``rows``,
    negatives drawn from the global RNG seeded with ``seed``."""
    eager = model()
    torch.manual_seed(seed)
    logs = []
    for step in range(2):
        outputs = eager(**{key: value[rows] for key, value in batch(step).items()})
        outputs["loss"].backward()
        logs.append({key: value.item() for key, value in outputs.items()})
    return logs, {name: p.grad for name, p in eager.named_parameters() if p.grad is not None}


def process(rank: int, port: int, results) -> None:
    dist.init_process_group("gloo", f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    logs, grads = train(slice(2 * rank, 2 * rank + 2), seed=1 + rank)  # different RNGs
    for grad in grads.values():
        dist.all_reduce(grad)
        grad /= 2  # DDP's average
    results[rank] = (logs, grads)
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_processes_compute_the_whole_batch():
    one_logs, one_grads = train(slice(0, 4), seed=1)
    results = mp.Manager().dict()
    mp.spawn(process, args=(free_port(), results), nprocs=2)
    (logs0, grads), (logs1, _) = results[0], results[1]
    for one, first, second in zip(one_logs, logs0, logs1, strict=True):
        assert one.keys() == first.keys() == second.keys()
        for key, value in one.items():  # the mean of the processes' shares
            assert (first[key] + second[key]) / 2 == pytest.approx(value, rel=1e-5), key
    assert one_logs[0].keys() >= {"gct_sem", "gct_beh"}
    assert grads.keys() == one_grads.keys()
    for name, grad in grads.items():
        assert torch.allclose(grad, one_grads[name], rtol=1e-4, atol=1e-6), name
