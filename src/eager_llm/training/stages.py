"""One training run (stage 1 or the annealing stage 2): config -> samples, model -> files.

Both stages are the same run with different configs (:func:`~.config.load_config`) and
base models: stage 1 starts from ``config.model``, stage 2 from stage 1's ``final/``.
Writes to ``config.output_dir``: ``checkpoint-*``, ``metrics.jsonl``, ``loss_curve.png``,
``final/`` (the LM and tokenizer, a plain Hugging Face causal LM unless an unmerged LoRA
adapter, plus a copy of ``item_index.json`` and ``run_settings.json``: the index folder,
prompt template and history length that evaluation must reuse) and, with GCT,
``projectors.safetensors``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset
from transformers import set_seed

from eager_llm.data import (
    Interactions,
    ItemCatalog,
    LeaveOneOut,
    Review,
    leave_one_out,
    load_reviews,
    reviews_by_user,
)
from eager_llm.indexing.dki import BEHAVIOUR, SEMANTIC
from eager_llm.indexing.token_init import code_vectors
from eager_llm.tasks import REVIEW_TASKS, Sample, TaskData, build_samples
from model_zoo import resolve
from model_zoo.run_folder import apply_plan, config_fingerprint, plan_run, undone_on_failure
from model_zoo.training_guards import read_records, truncate_after, written

from .collator import ResponseCollator
from .config import ConfigError, EagerConfig
from .gct import GCTHead
from .index_files import IndexFiles, load_index, load_indexed_dataset
from .model import EagerLLM, add_lora, index_token_ids, load_lm, train_top_layers
from .preflight import check_run_inputs
from .run_log import (
    MetricsFile,
    plot_learning_curve,
    plot_loss_curve,
)
from .trainer import PROJECTORS, EagerTrainer, save_projectors
from .validation import RankingValidation, baseline_metrics, sample_users

METRICS = "metrics.jsonl"
VALIDATION_BASELINES = "validation_baselines.json"
RUN_SETTINGS = "run_settings.json"
# What --overwrite also removes (a run folder is one with checkpoints, final/ or metrics).
RUN_DERIVED = (VALIDATION_BASELINES, PROJECTORS, "*_curve.png", "eval.*")


class SampleDataset(Dataset):
    """The samples as a map-style dataset; ``lengths`` (characters of prompt + response)
    serve length-grouped batching."""

    def __init__(self, samples: list[Sample]):
        self.samples = samples
        self.lengths = [len(s.prompt) + len(s.response) for s in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, position: int) -> Sample:
        return self.samples[position]


def task_reviews(
    config: EagerConfig, dataset: str, interactions: Interactions
) -> list[dict[int, Review]]:
    """Per user, item -> review when ``config.tasks`` has a review task (else empty); on a
    dataset without review text, a note that those tasks are skipped."""
    if not (wanted := [task for task in config.tasks if task in REVIEW_TASKS]):
        return []
    if (reviews := load_reviews(dataset)) is None:
        if config.process_index == 0:
            print(
                f"note: {', '.join(wanted)} skipped: {dataset} has no review text "
                "(only Amazon review files have it)"
            )
        return []
    return reviews_by_user(interactions, reviews)


def training_samples(
    config: EagerConfig,
    files: IndexFiles,
    split: LeaveOneOut,
    catalog: ItemCatalog,
    reviews: list[dict[int, Review]] = (),
) -> list[Sample]:
    """The samples of ``config.tasks`` on the index's dataset (deterministic in the seed);
    ``reviews``: :func:`task_reviews`."""
    data = TaskData.build(
        split, files.item_ids, catalog, files.item_index, config.description_words, reviews
    )
    return build_samples(
        data,
        config.tasks,
        seed=config.seed,
        template=config.template,
        prefixes_per_user=config.prefixes_per_user,
        seqrec_labels=config.seqrec_labels,
    )


def validation_parts(config: EagerConfig, files: IndexFiles, split: LeaveOneOut):
    """(RankingValidation, its users) when ``eval_strategy`` or ``eval_on_start`` is on, else
    (None, None); also writes the baselines on the same users to ``validation_baselines.json``."""
    if config.eval_strategy == "no" and not config.eval_on_start:
        return None, None
    seed = config.seed if config.valid_seed is None else config.valid_seed
    users = sample_users(split.valid, config.valid_users, seed)
    remove = config.valid_seen == "remove"
    validation = RankingValidation.build(
        users,
        files.item_index,
        files.item_ids,
        config.max_history,
        config.template,
        seen_items=[split.train[e.user].tolist() for e in users] if remove else None,
        beams=config.valid_beams,
        beam_scores=config.valid_beam_scores,
    )
    if config.process_index == 0:
        sasrec = Path(config.index) / "sasrec"
        baselines = baseline_metrics(
            users, split.train, len(files.item_ids), sasrec, config.valid_seen
        )
        out = Path(config.output_dir) / VALIDATION_BASELINES
        header = {"n_users": len(users), "seen": config.valid_seen}
        out.write_text(json.dumps({**header, **baselines}, indent=1))
    return validation, users


def build_trainer(config: EagerConfig, base: str | None = None) -> EagerTrainer:
    """The trainer of ``config``, starting from ``base`` (default: ``config.model``)."""
    if not config.index:
        raise ConfigError("no index folder: set 'index' or pass --index")
    files = load_index(config.index)
    interactions, catalog = load_indexed_dataset(files)
    split = leave_one_out(interactions, max_history=config.max_history)
    reviews = task_reviews(config, files.dataset, interactions)
    samples = training_samples(config, files, split, catalog, reviews)
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    validation, valid_users = validation_parts(config, files, split)
    set_seed(config.seed)  # the projectors' and LoRA's initial weights
    titles, vectors = None, None
    if config.index_token_init in ("title", "embedding"):
        titles = {item_id: catalog[item_id].title for item_id in files.item_ids}
    if config.index_token_init == "embedding":
        if not files.level_sources:
            raise ConfigError(
                f"{config.index}: index_stats.json has no level_sources (rebuild the index "
                "with `eager-llm index`)",
                key="index_token_init",
            )
        sources = {SEMANTIC: files.semantic, BEHAVIOUR: files.behaviour}
        vectors = code_vectors(files.item_index, files.item_ids, files.level_sources, sources)
    tokenizer, lm = load_lm(
        resolve(base or config.model), files.item_index, config.model_dtype, titles, vectors
    )
    if config.train_layers is not None:
        train_top_layers(lm, config.train_layers)
    token_ids = index_token_ids(tokenizer, files.item_index)
    if config.lora_settings is not None:
        lm = add_lora(lm, config.lora_settings, token_ids)
    gct = None
    if config.use_gct:
        gct = GCTHead(
            lm.config.get_text_config().hidden_size,
            torch.from_numpy(files.semantic),
            torch.from_numpy(files.behaviour),
            temperature=config.gct_temperature,
            negatives=config.gct_negatives,
        )
    model = EagerLLM(lm, gct, config.gct_semantic_weight, config.gct_behaviour_weight)
    return EagerTrainer(
        model=model,
        args=config,
        train_dataset=SampleDataset(samples),
        eval_dataset=valid_users,
        data_collator=ResponseCollator(tokenizer, config.max_length),
        processing_class=tokenizer,
        callbacks=[MetricsFile(output_dir / METRICS)],
        validation=validation,
        index_token_ids=token_ids,
        index_token_lr=config.index_token_lr,
        projector_lr=config.projector_lr,
    )


def save_final(trainer: EagerTrainer, config: EagerConfig) -> Path:
    """Write ``final/`` (merging a LoRA adapter when ``config.merge_lora``) and the projectors."""
    output_dir = Path(config.output_dir)
    final = output_dir / "final"
    model = trainer.accelerator.unwrap_model(trainer.model)
    lm = model.lm
    if config.lora_settings is not None and config.merge_lora:
        lm = lm.merge_and_unload()
    if trainer.accelerator.is_main_process:
        lm.save_pretrained(final)
        trainer.processing_class.save_pretrained(final)
        shutil.copyfile(Path(config.index) / "item_index.json", final / "item_index.json")
        settings = {
            "index": str(Path(config.index).resolve()),
            "template": config.template,
            "max_history": config.max_history,
            "precision": "bf16-autocast" if config.bf16 else "float32",
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "best_metric": trainer.state.best_metric,
        }
        (final / RUN_SETTINGS).write_text(json.dumps(settings, indent=1))
        if model.gct is not None:
            save_projectors(model.gct.state_dict(), output_dir / PROJECTORS)
        if (output_dir / METRICS).is_file():
            plot_loss_curve(output_dir / METRICS, output_dir / "loss_curve.png", output_dir.name)
            baselines = output_dir / VALIDATION_BASELINES
            if baselines.is_file() and any(
                "eval_recall@10" in r for r in read_records(output_dir / METRICS)
            ):
                plot_learning_curve(
                    output_dir / METRICS,
                    baselines,
                    output_dir / "learning_curve.png",
                    output_dir.name,
                )
    return final


def run(
    config: EagerConfig,
    *,
    base: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    build: Callable[[EagerConfig, str | None], EagerTrainer] | None = None,
) -> Path:
    """Train the trainer ``build(config, base)`` makes (default :func:`build_trainer`), or
    ``resume`` it from the newest complete checkpoint in ``output_dir``; return ``final/``.
    Index, dataset, model and ``max_length`` are checked, then the run folder
    (:mod:`model_zoo.run_folder`: a folder holding another run is refused unless
    ``overwrite``; a resume must have the run's config, index and base), before anything
    is written."""
    output_dir = Path(config.output_dir)
    check_run_inputs(config, base)
    data = {"index": config.index, **({"base": _weights(base)} if base else {})}
    fingerprint = config_fingerprint("eager-llm", config.to_dict(), data, ["index"])
    plan = plan_run(
        output_dir,
        fingerprint,
        resume=resume,
        overwrite=overwrite,
        records=[METRICS],
        derived=RUN_DERIVED,
    )
    _barrier()  # every process has read the folder before the main one changes it
    if config.process_index == 0:
        apply_plan(plan)
        if plan.checkpoint is None:
            (output_dir / METRICS).unlink(missing_ok=True)
        else:
            truncate_after(output_dir / METRICS, plan.step)
    _barrier()
    with undone_on_failure(plan, [METRICS], main=config.process_index == 0):
        trainer = (build or build_trainer)(config, base)
        trainer.train(resume_from_checkpoint=str(plan.checkpoint) if plan.checkpoint else None)
    with written(output_dir / "final"):
        return save_final(trainer, config)


def _weights(folder: str) -> list[Path]:
    """The files that make a model: its config and weights."""
    files = [Path(folder) / "config.json", *sorted(Path(folder).glob("*.safetensors"))]
    return [path for path in files if path.is_file()]


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def stage1_final(stage1_dir: str | Path, verb: str = "anneal", stage: str = "stage-1") -> Path:
    """The merged model in ``stage1_dir`` (its ``final/``), checked to be one; ``verb`` and
    ``stage`` name the run that needs it and the one that made it."""
    final = Path(stage1_dir) / "final"
    if not (final / "config.json").is_file():
        raise FileNotFoundError(
            f"{stage1_dir}: no final/config.json; {verb} starts from a finished {stage} run "
            "whose final/ is a plain (merged) model"
        )
    return final
