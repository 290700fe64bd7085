"""The training tests' config and the toy catalogue (:mod:`eager_llm.toy`: a hand-made
dataset and index folder)."""

from __future__ import annotations

from pathlib import Path

from eager_llm.toy import N_ITEMS, SEQUENCES, toy_index, write_dataset, write_index  # noqa: F401

CONFIG = Path(__file__).parents[3] / "configs" / "eager_llm" / "tiny.yaml"


def script_validation(monkeypatch, recalls, n_users: int) -> None:
    """Every trainer ``eager_llm.training.stages.run`` builds from now on reports ``recalls``
    (one value per validation, in order) instead of ranking its validation users."""
    import eager_llm.training.stages as stages

    scripted = iter(recalls)
    built = stages.build_trainer

    def patched(*args, **kwargs):
        trainer = built(*args, **kwargs)
        trainer.validation = lambda lm, tokenizer: {
            "recall@10": next(scripted), "ndcg@10": 0.0, "n_users": n_users
        }  # fmt: skip
        return trainer

    monkeypatch.setattr(stages, "build_trainer", patched)
