"""Stage 3, one run: an :class:`~.config.RLConfig` and the stage-2 model -> files.

The run folder holds what stage 2's holds (:mod:`eager_llm.training.stages`: checkpoints,
``metrics.jsonl`` with ``reward``, ``hit_rate`` and ``kl`` per logging step, ``final/``
merged by default, ``run_settings.json``), and resumes, refuses or overwrites the same way.
"""

from __future__ import annotations

from pathlib import Path

from transformers import set_seed

from eager_llm.baselines.markov import transition_counts
from eager_llm.data import leave_one_out
from eager_llm.training.index_files import load_index, load_indexed_dataset
from eager_llm.training.model import add_lora, index_token_ids, load_lm
from eager_llm.training.run_log import MetricsFile
from eager_llm.training.stages import METRICS, run, validation_parts

from .config import RLConfig
from .policy import GRPOPolicy
from .trainer import RL_PARTS, ExampleDataset, RLTrainer, collate_examples

RL_KEYS = ("loss", *RL_PARTS, "learning_rate")  # metrics.jsonl


def build_rl_trainer(config: RLConfig, base: str) -> RLTrainer:
    """The stage-3 trainer of ``config``: a LoRA adapter on the model in ``base`` (stage 2's
    ``final/``), trained on every training example of the index's dataset."""
    files = load_index(config.index)
    interactions, _ = load_indexed_dataset(files)
    split = leave_one_out(interactions, max_history=config.max_history)
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    validation, valid_users = validation_parts(config, files, split)
    set_seed(config.seed)  # LoRA's initial weights
    tokenizer, lm = load_lm(base, files.item_index, config.model_dtype)
    token_ids = index_token_ids(tokenizer, files.item_index)
    lm = add_lora(lm, config.lora_settings, token_ids)
    transitions = None
    if config.cooccurrence_weight > 0:
        transitions = transition_counts(split.train, len(files.item_ids))
    return RLTrainer(
        model=GRPOPolicy(lm, config.beta, config.epsilon),
        args=config,
        train_dataset=ExampleDataset(split.train_examples()),
        eval_dataset=valid_users,
        data_collator=collate_examples,
        processing_class=tokenizer,
        callbacks=[MetricsFile(output_dir / METRICS, RL_KEYS)],
        validation=validation,
        index_token_ids=token_ids,
        index_token_lr=config.index_token_lr,
        item_index=files.item_index,
        item_ids=files.item_ids,
        template=config.template,
        max_history=config.max_history,
        max_length=config.max_length,
        beams=config.beams,
        seen=config.seen,
        beam_scores=config.beam_scores,
        weights=config.reward_weights,
        transitions=transitions,
    )


def run_rl(config: RLConfig, *, base: str, resume: bool = False, overwrite: bool = False) -> Path:
    """Train stage 3 from the merged stage-2 model in ``base`` (or ``resume`` the run in
    ``output_dir``); return ``final/`` (:func:`eager_llm.training.stages.run`)."""
    return run(config, base=base, resume=resume, overwrite=overwrite, build=build_rl_trainer)
