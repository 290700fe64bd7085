"""Preprocessing, leave-one-out split and statistics on hand-made data."""

import numpy as np
import pytest

from eager_llm.data import (
    Example,
    Interactions,
    ItemCatalog,
    ItemText,
    interaction_stats,
    leave_one_out,
    load_dataset,
    preprocess,
)
from eager_llm.data.preprocess import (
    drop_items_without_text,
    drop_repeats,
    k_core_filter,
    sort_by_time,
)


def events(*rows):
    """Interactions from ``(user, item, time)`` rows."""
    users, items, times = zip(*rows, strict=True)
    return Interactions.from_ids(users, items, times)


def rows(interactions):
    """``(user, item, time)`` rows back from interactions."""
    return [
        (interactions.user_ids[u], interactions.item_ids[i], t)
        for u, i, t in zip(
            interactions.users, interactions.items, interactions.timestamps, strict=True
        )
    ]


def catalog(*item_ids):
    return ItemCatalog({item_id: ItemText(title=f"title {item_id}") for item_id in item_ids})


def test_indices_follow_first_appearance_and_take_reindexes():
    x = events(("u2", "b", 1), ("u1", "a", 2), ("u2", "a", 3))
    assert x.user_ids.tolist() == ["u2", "u1"]
    assert x.item_ids.tolist() == ["b", "a"]
    assert x.users.tolist() == [0, 1, 0]
    kept = x.take([False, True, True])
    assert kept.user_ids.tolist() == ["u2", "u1"]
    assert kept.item_ids.tolist() == ["a"]
    assert kept.users.tolist() == [1, 0]
    assert kept.items.tolist() == [0, 0]


def test_drop_items_without_text():
    cat = ItemCatalog({"a": ItemText("A"), "b": ItemText("  "), "c": ItemText("")})
    x = events(("u", "a", 1), ("u", "b", 2), ("u", "c", 3), ("u", "d", 4), ("v", "a", 5))
    assert rows(drop_items_without_text(x, cat)) == [("u", "a", 1), ("v", "a", 5)]


def test_drop_repeats_keeps_the_earliest_then_first_row():
    x = events(("u", "a", 5), ("u", "b", 1), ("u", "a", 2), ("v", "a", 2), ("u", "a", 2))
    assert rows(drop_repeats(x)) == [("u", "b", 1), ("u", "a", 2), ("v", "a", 2)]


def test_k_core_iterates_to_a_fixpoint():
    # First pass drops u4 and item c; only then u3 (left with one event) falls below k=2.
    x = events(
        ("u1", "a", 1), ("u1", "b", 2), ("u2", "a", 3), ("u2", "b", 4),
        ("u3", "a", 5), ("u3", "c", 6), ("u4", "d", 7),
    )  # fmt: skip
    core = k_core_filter(x, 2)
    assert rows(core) == [("u1", "a", 1), ("u1", "b", 2), ("u2", "a", 3), ("u2", "b", 4)]
    assert core.n_users == 2 and core.n_items == 2
    assert rows(k_core_filter(core, 2)) == rows(core)


def test_sort_by_time_is_stable_on_ties():
    x = events(("u2", "x", 3), ("u1", "a", 2), ("u1", "b", 1), ("u1", "c", 2), ("u2", "y", 1))
    expected = [("u2", "y", 1), ("u2", "x", 3), ("u1", "b", 1), ("u1", "a", 2), ("u1", "c", 2)]
    assert rows(sort_by_time(x)) == expected
    assert [x.item_ids[s].tolist() for s in x.sequences()] == [["y", "x"], ["b", "a", "c"]]


def test_preprocess_chains_the_steps_and_reports_counts():
    x = events(
        ("u1", "a", 3), ("u1", "b", 1), ("u1", "a", 0), ("u1", "c", 2), ("u1", "notext", 4),
        ("u2", "a", 1), ("u2", "b", 2), ("u2", "c", 3),
        ("u3", "c", 1), ("u3", "rare", 2),
    )  # fmt: skip
    out, cat, report = preprocess(x, catalog("a", "b", "c", "rare"), k_core=2)
    assert rows(out) == [
        ("u1", "a", 0), ("u1", "b", 1), ("u1", "c", 2),
        ("u2", "a", 1), ("u2", "b", 2), ("u2", "c", 3),
    ]  # fmt: skip
    assert list(cat) == ["a", "b", "c"]
    assert report == {
        "raw_users": 3,
        "raw_items": 5,
        "raw_interactions": 10,
        "k_core": 2,
        "items_without_text": 1,
        "interactions_without_text": 1,
        "repeated_interactions": 1,
        "k_core_removed_interactions": 2,
        "short_users_skipped": 0,
    }


def test_short_users_raise_or_are_skipped():
    x = events(
        ("u1", "a", 1), ("u1", "b", 2), ("u1", "c", 3),
        ("u2", "a", 1), ("u2", "b", 2),
        ("u3", "c", 1),
    )  # fmt: skip
    cat = catalog("a", "b", "c")
    message = r"2 users have fewer than 3 interactions .* \('u2', 'u3'\); pass skip_invalid=True"
    with pytest.raises(ValueError, match=message):
        preprocess(x, cat, k_core=1)
    with pytest.raises(ValueError, match=message):
        leave_one_out(x)
    out, _, report = preprocess(x, cat, k_core=1, skip_invalid=True)
    assert rows(out) == [("u1", "a", 1), ("u1", "b", 2), ("u1", "c", 3)]
    assert report["short_users_skipped"] == 2


def test_leave_one_out_targets_and_histories():
    x = events(*[("u", item, t) for t, item in enumerate("abcde")], ("v", "a", 0), ("v", "b", 1),
               ("v", "c", 2))  # fmt: skip
    split = leave_one_out(x)
    a, b, c, d, e = range(5)
    assert [s.tolist() for s in split.train] == [[a, b, c], [a]]
    assert split.valid == [Example(0, (a, b, c), d), Example(1, (a,), b)]
    assert split.test == [Example(0, (a, b, c, d), e), Example(1, (a, b), c)]
    assert list(split.train_examples()) == [Example(0, (a,), b), Example(0, (a, b), c)]


def test_histories_keep_the_last_20_items():
    x = events(*[("u", f"i{t}", t) for t in range(25)])
    split = leave_one_out(x)
    assert split.valid[0] == Example(0, tuple(range(3, 23)), 23)
    assert split.test[0] == Example(0, tuple(range(4, 24)), 24)
    last = list(split.train_examples())[-1]
    assert last == Example(0, tuple(range(2, 22)), 22)
    short = leave_one_out(x, max_history=2)
    assert short.test[0] == Example(0, (22, 23), 24)
    assert all(len(example.history) <= 2 for example in short.train_examples())


def test_no_valid_or_test_target_is_a_training_label():
    interactions, _ = load_dataset("movielens-100k")
    split = leave_one_out(interactions)
    held_out = {(ex.user, ex.target) for ex in split.valid + split.test}
    seen = {(ex.user, item) for ex in split.train_examples() for item in (*ex.history, ex.target)}
    assert len(held_out) == 2 * interactions.n_users
    assert not held_out & seen


def test_interaction_stats():
    x = events(("u1", "a", 1), ("u1", "b", 2), ("u2", "a", 3))
    assert interaction_stats(x) == {
        "users": 2,
        "items": 2,
        "interactions": 3,
        "density": 0.75,
        "mean_sequence_length": 1.5,
    }


# Tie order: events of a user with equal timestamps in file row order, or its reverse.

TIED = (
    ("u", "a", 1), ("v", "p", 5), ("u", "b", 2), ("u", "c", 2), ("v", "q", 6), ("u", "d", 3),
    ("u", "e", 4), ("v", "r", 7), ("u", "f", 4), ("u", "g", 4), ("v", "s", 8),
)  # fmt: skip


def item_sequences(x, tie_order):
    return [x.item_ids[s].tolist() for s in x.sequences(tie_order)]


def test_reversed_tie_order_swaps_exactly_the_tied_events():
    x = events(*TIED)
    assert item_sequences(x, "file") == [list("abcdefg"), list("pqrs")]
    assert item_sequences(x, "reversed") == [list("acbdgfe"), list("pqrs")]
    file, reversed_ = x.time_order("file"), x.time_order("reversed")
    assert x.time_order().tolist() == file.tolist()  # the default is the file order
    # the same user and time at every position; only events sharing a time changed places
    assert x.users[file].tolist() == x.users[reversed_].tolist()
    assert x.timestamps[file].tolist() == x.timestamps[reversed_].tolist()
    moved = file != reversed_
    assert x.item_ids[x.items[file[moved]]].tolist() == ["b", "c", "e", "g"]


def test_reversed_tie_order_is_the_reverse_row_order_within_ties_on_random_tables():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 60))
        x = Interactions.from_ids(
            rng.integers(0, 4, n).astype(str), np.arange(n).astype(str), rng.integers(0, 5, n)
        )
        for tie_order, sign in (("file", 1), ("reversed", -1)):
            expected = sorted(range(n), key=lambda r: (x.users[r], x.timestamps[r], sign * r))
            assert x.time_order(tie_order).tolist() == expected


def test_split_moves_only_the_users_with_ties():
    # u: tie between its last two events; w: tie inside its training part only; v: no tie
    x = events(*TIED, ("w", "a", 1), ("w", "b", 1), ("w", "c", 2), ("w", "d", 3))
    file = leave_one_out(x, tie_order="file")
    reversed_ = leave_one_out(x, tie_order="reversed")
    u, v, w = 0, 1, 2
    a, b, c, d, e, f, g = (x.item_ids.tolist().index(i) for i in "abcdefg")
    assert file.valid[u] == Example(u, (a, b, c, d, e), f)
    assert file.test[u] == Example(u, (a, b, c, d, e, f), g)
    assert reversed_.valid[u] == Example(u, (a, c, b, d, g), f)
    assert reversed_.test[u] == Example(u, (a, c, b, d, g, f), e)
    assert file.train[v].tolist() == reversed_.train[v].tolist()
    assert file.valid[v] == reversed_.valid[v] and file.test[v] == reversed_.test[v]
    assert file.train[w].tolist() == [a, b] and reversed_.train[w].tolist() == [b, a]
    assert (file.valid[w].target, file.test[w].target) == (c, d)
    assert (reversed_.valid[w].target, reversed_.test[w].target) == (c, d)


def test_unknown_tie_order_is_an_error():
    x = events(*TIED)
    for call in (
        lambda: leave_one_out(x, tie_order="random"),
        lambda: x.time_order("reverse"),
        lambda: x.sequences(""),
    ):
        with pytest.raises(ValueError, match="tie_order must be 'file' or 'reversed'"):
            call()
