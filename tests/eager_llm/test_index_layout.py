"""The index layout rule (``k: auto``) and the per-level statistics of ``eager-llm index``."""

import numpy as np
import pytest

from eager_llm.indexing.dki import Codes, auto_k, level_statistics
from eager_llm.indexing.kmeans import code_length


@pytest.mark.parametrize("n, k", [(2, 2), (4, 2), (5, 3), (1349, 37), (1369, 37), (1370, 38)])
def test_auto_k_is_the_ceiling_square_root_so_two_levels_suffice(n, k):
    assert auto_k(n) == k
    assert code_length(n, auto_k(n)) <= 2


def test_level_statistics_count_prefixes_and_decided_items():
    values = np.array([[0, 0, 5], [0, 1, 5], [1, 0, 5], [1, 0, 6], [2, 0, 5]])
    stats = level_statistics(Codes(values, ("semantic", "semantic", "behaviour")))
    assert [s["values"] for s in stats] == [3, 2, 2]
    assert [s["prefixes"] for s in stats] == [3, 4, 5]
    assert [s["items_per_prefix_max"] for s in stats] == [2, 2, 1]
    # level 0: only item 4 is alone; level 1: items 0, 1, 4; level 2: all
    assert [s["decided"] for s in stats] == [0.2, 0.6, 1.0]
    assert stats[2]["source"] == "behaviour"
