"""Behaviour (SASRec) and semantic encoders, and the embedding cache."""

import numpy as np
import pytest
import torch

from eager_llm.data import Example, Interactions, ItemCatalog, ItemText, leave_one_out
from eager_llm.encoders import (
    SASRec,
    SASRecConfig,
    TrainConfig,
    cached_folder,
    encode_texts,
    evaluate,
    item_text,
    item_texts,
    train_sasrec,
)
from eager_llm.encoders.behaviour import (
    IGNORE,
    full_softmax_loss,
    sampled_softmax_loss,
    training_windows,
)
from tests.eager_llm.interrupt import dies_on_call

SMALL = SASRecConfig(dim=16, num_blocks=1, max_len=5, dropout=0.0)


def cyclic_split(n_users=60, n_items=12, length=9, seed=0):
    """Users walk the items in a cycle (next = current + 1 mod n_items) from random starts."""
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for user in range(n_users):
        start = rng.integers(n_items)
        for t in range(length):
            users.append(f"u{user}")
            items.append(f"i{(start + t) % n_items}")
            times.append(t)
    interactions = Interactions.from_ids(users, items, times)
    return interactions, leave_one_out(interactions, max_history=5)


def test_training_windows_cover_each_training_item_once_and_nothing_else():
    interactions, split = cyclic_split()
    for user, sequence in enumerate(split.train):
        inputs, labels = training_windows([sequence], max_len=3)
        assert inputs.shape == labels.shape and inputs.shape[1] == 3
        kept = labels[labels != IGNORE]
        assert sorted(kept.tolist()) == sorted(sequence[1:].tolist())
        assert sorted((inputs[labels != IGNORE] - 1).tolist()) == sorted(sequence[:-1].tolist())
        for held_out in (split.valid[user].target, split.test[user].target):
            assert held_out not in kept
    with pytest.raises(ValueError, match="nothing to learn"):
        training_windows([np.array([3])], max_len=3)


def test_every_prefix_rows_give_each_label_its_whole_history_once():
    """RecBole's construction: one row per training label, the label on the last position
    only, the input the (up to max_len) items right before it; never a held-out target."""
    interactions, split = cyclic_split()
    for user, sequence in enumerate(split.train):
        inputs, labels = training_windows([sequence], max_len=3, windows="every-prefix")
        assert len(inputs) == len(sequence) - 1
        assert (labels[:, :-1] == IGNORE).all()
        assert labels[:, -1].tolist() == sequence[1:].tolist()
        for row, end in enumerate(range(1, len(sequence))):
            history = sequence[max(0, end - 3) : end] + 1
            assert inputs[row, 3 - len(history) :].tolist() == history.tolist()
            assert (inputs[row, : 3 - len(history)] == 0).all()
        for held_out in (split.valid[user].target, split.test[user].target):
            assert held_out not in labels[:, -1]
    with pytest.raises(ValueError, match="windows must be one of"):
        training_windows(split.train, max_len=3, windows="sliding")


def test_the_catalogue_loss_is_the_mean_over_labelled_positions_only():
    """Unlabelled (padded) positions cost nothing: equal to the loss of the labelled rows."""
    torch.manual_seed(0)
    model = SASRec(7, SMALL)
    inputs = torch.tensor([[0, 1, 2], [3, 4, 5]])
    labels = torch.tensor([[IGNORE, IGNORE, 4], [IGNORE, 2, 6]])
    hidden = model(inputs)
    expected = torch.nn.functional.cross_entropy(
        torch.stack([hidden[0, 2], hidden[1, 1], hidden[1, 2]]) @ model.item_embeddings().T,
        torch.tensor([4, 2, 6]),
    )
    torch.testing.assert_close(full_softmax_loss(model, hidden, labels), expected)


def test_validation_and_test_targets_never_influence_training():
    """Same training sequences, different held-out targets -> bit-identical weights."""
    interactions, split = cyclic_split(n_users=20)
    shifted = [
        Example(e.user, e.history, (e.target + 5) % interactions.n_items) for e in split.valid
    ]
    other = type(split)(split.train, shifted, list(reversed(split.test)), split.max_history)
    config = TrainConfig(epochs=2, batch_size=8, patience=None)
    a, _ = train_sasrec(split, interactions.n_items, SMALL, config, progress=False)
    b, _ = train_sasrec(other, interactions.n_items, SMALL, config, progress=False)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_an_interrupted_training_resumes_from_its_epoch_checkpoint_bit_for_bit(
    tmp_path, monkeypatch
):
    """Killed during epoch 3's validation, rerun with the same checkpoint file: the same
    weights and history as a run that never stopped (dropout and shuffling states restored)."""
    import eager_llm.encoders.behaviour as behaviour

    interactions, split = cyclic_split()
    small = SASRecConfig(dim=16, num_blocks=1, max_len=5, dropout=0.2)
    config = TrainConfig(epochs=4, batch_size=8, patience=10, negatives=5)
    reference, expected = train_sasrec(split, interactions.n_items, small, config, progress=False)
    checkpoint = tmp_path / "sasrec.epoch.pt"
    measured = behaviour.evaluate
    monkeypatch.setattr(behaviour, "evaluate", dies_on_call(measured, 3))  # epoch 3
    with pytest.raises(KeyboardInterrupt):
        train_sasrec(split, interactions.n_items, small, config, progress=False,
                     checkpoint=checkpoint)  # fmt: skip
    assert torch.load(checkpoint, weights_only=False)["epoch"] == 2
    monkeypatch.setattr(behaviour, "evaluate", measured)
    resumed, report = train_sasrec(split, interactions.n_items, small, config, progress=False,
                                   checkpoint=checkpoint)  # fmt: skip
    assert report == expected
    for (name, x), (_, y) in zip(
        resumed.state_dict().items(), reference.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name


def test_sasrec_learns_a_cycle_scores_ranks_and_round_trips(tmp_path):
    interactions, split = cyclic_split()
    config = TrainConfig(epochs=30, batch_size=32, lr=5e-3, patience=10)
    model, report = train_sasrec(split, interactions.n_items, SMALL, config, progress=False)
    assert report["valid"]["recall@10"] == 1.0  # 12 items: a correct model ranks it first
    assert report["valid"]["ndcg@10"] > 0.9
    assert report["best_epoch"] == max(report["history"], key=lambda r: r["ndcg@10"])["epoch"]

    histories = [e.history for e in split.test[:4]]
    scores = model.score(histories)
    assert scores.shape == (4, interactions.n_items) and torch.isfinite(scores).all()
    masked = model.score(histories, mask_history=True)
    for row, history in enumerate(histories):
        assert torch.isinf(masked[row, list(history)]).all()
        assert not set(model.recommend(histories, 3, mask_history=True)[row].tolist()) & set(
            history
        )
    assert model.item_embeddings().shape == (interactions.n_items, SMALL.dim)

    model.save(tmp_path / "sasrec")
    loaded = SASRec.load(tmp_path / "sasrec")
    assert loaded.config == SMALL and loaded.num_items == interactions.n_items
    assert torch.equal(loaded.score(histories), scores)
    assert evaluate(loaded, split.valid) == report["valid"]


def test_sampled_softmax_over_every_item_is_the_full_softmax():
    interactions, split = cyclic_split()
    inputs, labels = map(torch.from_numpy, training_windows(split.train, SMALL.max_len))
    model = SASRec(interactions.n_items, SMALL)
    hidden = model(inputs[:16])
    everything = torch.arange(interactions.n_items)
    full = full_softmax_loss(model, hidden, labels[:16])
    assert torch.allclose(sampled_softmax_loss(model, hidden, labels[:16], everything), full)


def test_sasrec_learns_with_sampled_negatives():
    interactions, split = cyclic_split()
    config = TrainConfig(epochs=30, batch_size=32, lr=5e-3, patience=10, negatives=4)
    _, report = train_sasrec(split, interactions.n_items, SMALL, config, progress=False)
    assert report["valid"]["recall@10"] == 1.0


def test_item_text_and_empty_text():
    item = ItemText("Toy Story", ("Animation", "Comedy"), " A toy cowboy. ")
    assert item_text(item) == "Toy Story. Categories: Animation, Comedy. A toy cowboy."
    assert item_text(ItemText("Heat")) == "Heat"
    catalog = ItemCatalog({"a": ItemText("A"), "b": ItemText("  ")})
    with pytest.raises(ValueError, match="1 items have no text to embed \\('b'\\)"):
        item_texts(catalog, ["a", "b"])


def test_minilm_embeddings_identical_for_identical_texts():
    texts = ["Heat. Categories: Action", "Toy Story", "Heat. Categories: Action"]
    embeddings = encode_texts(texts, batch_size=2)
    assert embeddings.shape == (3, 384) and embeddings.dtype == np.float32
    assert np.array_equal(embeddings[0], embeddings[2])
    assert not np.allclose(embeddings[0], embeddings[1])
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)


def test_cache_builds_once_per_key(tmp_path):
    calls = []

    def build(folder):
        calls.append(folder)
        np.save(folder / "x.npy", np.arange(3))

    key = {"dataset": "toy", "k_core": 5, "encoder": "e"}
    first, hit = cached_folder("semantic", key, build, root=tmp_path)
    assert not hit and len(calls) == 1
    again, hit = cached_folder("semantic", dict(reversed(key.items())), build, root=tmp_path)
    assert hit and again == first and len(calls) == 1
    assert np.load(again / "x.npy").tolist() == [0, 1, 2]
    other, hit = cached_folder("semantic", {**key, "k_core": 10}, build, root=tmp_path)
    assert not hit and other != first and len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, other.name])
