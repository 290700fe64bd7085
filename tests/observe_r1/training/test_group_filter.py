"""The pure parts of dynamic sampling: drop rules, per-process choice of kept groups, the
prompt order, and merging completions of several TRL rounds into one."""

from __future__ import annotations

import pytest
import torch

from observe_r1.training.group_filter import PromptOrder, keep_groups, take_groups
from observe_r1.training.round_merge import merge_rounds

REWARDS = torch.tensor([[1.5, 1.5, 1.5], [0.0, 0.5, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 1.5]])
CORRECT = REWARDS >= 1.0  # all right, none right (format varies), none right, mixed


@pytest.mark.parametrize(
    ("drop", "kept"),
    [
        ([], [True, True, True, True]),
        (["all_correct"], [False, True, True, True]),
        (["all_wrong"], [True, False, False, True]),
        (["zero_variance"], [False, True, False, True]),
        (["all_correct", "all_wrong"], [False, False, False, True]),
    ],
)
def test_keep_groups_applies_each_rule(drop, kept):
    assert keep_groups(REWARDS, CORRECT, drop).tolist() == kept


def test_an_unknown_rule_is_an_error():
    with pytest.raises(ValueError, match="unknown drop rule 'all_right'"):
        keep_groups(REWARDS, CORRECT, ["all_right"])


def test_each_process_takes_its_first_kept_groups_until_it_has_enough():
    keep = torch.tensor([[True, False, True], [False, False, True]])
    taken, need = take_groups(keep, [3, 1])
    assert taken.tolist() == [[True, False, True], [False, False, True]]
    assert need == [1, 0]
    taken, need = take_groups(torch.tensor([[True, True, True], [True, True, True]]), need)
    assert taken.tolist() == [[True, False, False], [False, False, False]]  # surplus unused
    assert need == [0, 0]


def test_the_ordered_prompt_order_is_the_file_wrapping_round():
    order = PromptOrder(5, shuffle=False, seed=0)
    assert order.take(3) + order.take(4) == [0, 1, 2, 3, 4, 0, 1]
    assert order.position == 7


def test_a_shuffled_order_permutes_each_pass_and_resumes_from_its_position():
    whole = PromptOrder(6, shuffle=True, seed=3).take(18)
    passes = [whole[i : i + 6] for i in (0, 6, 12)]
    assert all(sorted(p) == list(range(6)) for p in passes)
    assert passes[0] != passes[1]
    resumed = PromptOrder(6, shuffle=True, seed=3, position=4)
    assert resumed.take(14) == whole[4:]


PAD = 7


def _round(prompt_widths, completion_widths, first_token):
    """A TRL-like round of Qwen-VL style completions (one 2-patch image each); token ids
    ``first_token + row``, padded with ``PAD``."""
    n = len(prompt_widths)
    width, length = max(prompt_widths), max(completion_widths)
    prompt_ids = torch.full((n, width), PAD)
    prompt_mask = torch.zeros(n, width, dtype=torch.long)
    completion_ids = torch.full((n, length), PAD)
    completion_mask = torch.zeros(n, length, dtype=torch.long)
    for i, (p, c) in enumerate(zip(prompt_widths, completion_widths, strict=True)):
        prompt_ids[i, width - p :] = first_token + i
        prompt_mask[i, width - p :] = 1
        completion_ids[i, :c] = first_token + i
        completion_mask[i, :c] = 1
    return {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "ref_per_token_logps": completion_mask.float() * -(first_token + torch.arange(n)[:, None]),
        "mm_token_type_ids": torch.cat([prompt_mask, completion_mask * 0], dim=1),
        "advantages": (first_token + torch.arange(n)).float(),
        "pixel_values": (first_token + torch.arange(n)).float().repeat_interleave(2)[:, None],
        "image_grid_thw": torch.tensor([[1, 1, 2]] * n),
        "num_images": [1] * n,
        "num_items_in_batch": completion_mask.sum(),
    }


def test_merged_rounds_keep_each_chosen_completion_whole_and_aligned():
    first = _round([3, 2], [1, 4], first_token=10)  # widths 3 / 4
    second = _round([5, 1, 2], [2, 1, 1], first_token=20)  # widths 5 / 2
    merged = merge_rounds([(first, [1]), (second, [0, 2])], pad_token_id=PAD)
    assert merged["advantages"].tolist() == [11.0, 20.0, 22.0]
    assert merged["prompt_ids"].tolist() == [[7, 7, 7, 11, 11], [20] * 5, [7, 7, 7, 22, 22]]
    assert merged["prompt_mask"].sum(1).tolist() == [2, 5, 2]
    assert merged["completion_ids"].tolist() == [[11] * 4, [20, 20, 7, 7], [22, 7, 7, 7]]
    assert merged["completion_mask"].sum(1).tolist() == [4, 2, 1]
    assert merged["ref_per_token_logps"][:, 0].tolist() == [-11.0, -20.0, -22.0]
    types = merged["mm_token_type_ids"]
    assert types.shape == (3, 5 + 4)
    torch.testing.assert_close(types[:, :5], merged["prompt_mask"])
    assert types[:, 5:].sum() == 0
    assert merged["pixel_values"].view(-1).tolist() == [11.0, 11.0, 20.0, 20.0, 22.0, 22.0]
    assert merged["image_grid_thw"].shape == (3, 3)
    assert merged["num_images"] == [1, 1, 1]
    assert "num_items_in_batch" not in merged  # recounted by the caller, over every process


def test_an_unknown_trl_key_is_refused():
    with pytest.raises(ValueError, match=r"cannot merge TRL round key\(s\) \['new_key'\]"):
        merge_rounds([(_round([1], [1], 0) | {"new_key": torch.zeros(1)}, [0])], pad_token_id=0)
