"""Dealing batches to processes and merging their results back (no processes needed)."""

import pytest

from eager_llm.sharding import Shard, current_shard, deal, gather, merge


def test_deal_every_world_th_batch_from_the_rank():
    batches = [[0, 1], [2, 3], [4, 5], [6]]
    assert deal(batches, Shard(0, 2)) == [[0, 1], [4, 5]]
    assert deal(batches, Shard(1, 2)) == [[2, 3], [6]]
    assert deal(batches, Shard(2, 3)) == [[4, 5]]
    assert deal(batches, Shard()) == batches
    assert deal(batches[:1], Shard(1, 2)) == []  # more processes than batches


def test_merge_restores_user_order_and_checks_coverage():
    assert merge([{0: "a", 2: "c"}, {1: "b"}], 3) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="user 1 was decoded by two processes"):
        merge([{0: "a", 1: "b"}, {1: "b"}], 2)
    with pytest.raises(ValueError, match="1 users were not decoded \\(first: 2\\)"):
        merge([{0: "a", 1: "b"}], 3)


def test_one_process_gathers_its_own_part():
    shard, device = current_shard()  # not launched: one process
    assert shard == Shard(0, 1) and shard.is_main and device == "cpu"
    assert gather({0: [1]}, shard) == [{0: [1]}]
