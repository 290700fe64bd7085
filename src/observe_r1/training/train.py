"""One Observe-R1 training run: config -> model, data, rewards -> ObserveR1Trainer -> files.

Writes to ``output_dir``: ``checkpoint-*`` (Trainer checkpoints), ``metrics.jsonl``,
``rollouts.jsonl`` (one line per completion), ``reward_curve.png``, ``final/``
(a plain Hugging Face model + processor; LoRA adapters are merged) and
``run_fingerprint.json`` (the config and the train file's SHA-256, see
:mod:`model_zoo.run_folder`: a folder holds one run, resumed only with its own config).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import datasets
import torch
from accelerate.utils import is_peft_model
from datasets import Dataset, Image, Sequence
from transformers import AutoModelForImageTextToText

from model_zoo import resolve
from model_zoo.processors import load_processor, save_processor
from model_zoo.run_folder import apply_plan, config_fingerprint, plan_run, undone_on_failure
from model_zoo.training_guards import truncate_after, written
from observe_r1.data.prompts import TAGS
from observe_r1.data.rows import check_writable, read_rows, row_images
from observe_r1.evaluation.evaluate import question_and_gold, row_conversation
from observe_r1.rewards import make_accuracy_reward, make_format_reward
from observe_r1.training.config import ConfigError, ObserveR1Config
from observe_r1.training.pixels import pixel_bounds
from observe_r1.training.run_log import MetricsFile, plot_reward_curve
from observe_r1.training.trainer import ObserveR1Trainer
from observe_r1.training.validation import Validation, validation_rows


def training_dataset(config: ObserveR1Config) -> tuple[Dataset, int]:
    """Rows of ``config.train_file`` as TRL prompts (file order kept) and the skipped count."""
    loaded = read_rows(config.train_file, skip_invalid=config.skip_invalid)
    records = {
        # one image placeholder per image of the row, in order; none for a text-only row
        "prompt": [row_conversation(r, config.response_format) for r in loaded.rows],
        "images": [row_images(r) for r in loaded.rows],  # TRL fills the placeholders
        "answer": [question_and_gold(r)[1] for r in loaded.rows],  # choice rows: a letter
        "row_id": [str(r.get("id", index)) for index, r in enumerate(loaded.rows)],
    }
    # quietly: the cast's progress bar would precede a bad run's one error line
    quiet = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        dataset = Dataset.from_dict(records).cast_column("images", Sequence(Image()))
    finally:
        if not quiet:
            datasets.enable_progress_bars()
    return dataset, loaded.skipped


def reward_functions(config: ObserveR1Config) -> list:
    return [
        make_format_reward(config.format_value, config.format_compat, TAGS[config.response_format]),
        make_accuracy_reward(),
    ]


def freeze_vision_tower(model) -> str:
    """Stop gradients to ``model``'s vision encoder (``get_encoder("image")``: Qwen-VL's
    ``visual``, LLaVA's ``vision_tower``); return its module name."""
    tower = model.get_encoder(modality="image")
    name = next((n for n, module in model.named_modules() if module is tower and n), None)
    if name is None:
        raise ConfigError(
            f"freeze_vision: {type(model).__name__} has no vision encoder to freeze",
            key="freeze_vision",
        )
    tower.requires_grad_(False)
    return name


def _peft_config(config: ObserveR1Config, frozen: str | None = None):
    """LoRA on ``config.lora``'s targets, none inside the module ``frozen``."""
    settings = config.lora_settings
    if settings is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.targets,
        exclude_modules=rf"{re.escape(frozen)}\..*" if frozen else None,
        task_type="CAUSAL_LM",
    )


def engine_keeps_fp32_master(config: ObserveR1Config) -> bool:
    """Whether the launch engine keeps fp32 master weights of bf16 parameters itself:
    DeepSpeed (its bf16 optimizers hold fp32 partitions) or FSDP (accelerate upcasts the
    trainable parameters to fp32 under mixed precision). Plain DDP and one device do not."""

    def flag(name: str) -> bool:
        return os.environ.get(name, "false").lower() in ("true", "1")

    return (
        bool(config.deepspeed)
        or config.deepspeed_plugin is not None
        or bool(config.fsdp)
        or config.fsdp_plugin_args is not None
        or flag("ACCELERATE_USE_DEEPSPEED")
        or flag("ACCELERATE_USE_FSDP")
    )


def policy_dtype(bf16: bool, *, engine_keeps_master: bool, lora: bool) -> torch.dtype:
    """The dtype to load the policy in. bf16 only where something keeps fp32 copies of what
    is trained (the engine, or PEFT, whose LoRA adapters stay fp32 over a frozen bf16 base);
    otherwise fp32 master weights and bf16 autocast (``bf16: true`` -> accelerate's
    ``mixed_precision="bf16"``): Adam steps of lr 1e-6 round away on bf16 weights."""
    return torch.bfloat16 if bf16 and (engine_keeps_master or lora) else torch.float32


RECORDS = ("metrics.jsonl", "rollouts.jsonl")
DERIVED = ("reward_curve.png", "README.md")  # removed by --overwrite (README: TRL's model card)


def read_validation_rows(config: ObserveR1Config) -> list[dict] | None:
    """The held-out rows of ``eval_file`` (None without one), checked like the train file."""
    if not config.eval_file:
        return None
    return validation_rows(config.eval_file, config.eval_limit, skip_invalid=config.skip_invalid)


def build_trainer(
    config: ObserveR1Config, trainer_class=ObserveR1Trainer, *, data=None, eval_rows=None
):
    """The trainer for ``config`` (model resolved through the zoo; processor image-aware);
    ``data``: :func:`training_dataset`'s result, ``eval_rows``: :func:`read_validation_rows`'s,
    when already read."""
    dataset, skipped = data or training_dataset(config)
    if eval_rows is None:
        eval_rows = read_validation_rows(config)
    folder = resolve(config.model)
    processor = load_processor(folder)
    bounds = pixel_bounds(processor, config.min_pixels, config.max_pixels, use_vllm=config.use_vllm)
    dtype = policy_dtype(
        config.bf16,
        engine_keeps_master=engine_keeps_fp32_master(config),
        lora=config.lora_settings is not None,
    )
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=dtype)
    frozen = freeze_vision_tower(model) if config.freeze_vision else None
    if skipped:
        print(f"skipped {skipped} invalid rows of {config.train_file}")
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    is_ours = issubclass(trainer_class, ObserveR1Trainer)
    extra = (
        {"rollout_log": output_dir / "rollouts.jsonl", "pixel_bounds": bounds} if is_ours else {}
    )
    trainer = trainer_class(
        model=model,
        reward_funcs=reward_functions(config),
        args=config,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=_peft_config(config, frozen),
        callbacks=[MetricsFile(output_dir / "metrics.jsonl")],
        **extra,
    )
    if eval_rows:
        trainer.add_callback(validation_callback(trainer, eval_rows))
    return trainer


def validation_callback(trainer, rows: list[dict]) -> Validation:
    """The :class:`Validation` of ``trainer``'s run (after ``MetricsFile``, so that a step's
    ``step_seconds`` leaves the validation out). Refused under FSDP and DeepSpeed ZeRO-3,
    whose sharded weights would need every process in each generate call."""
    deepspeed = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    if trainer.is_fsdp_enabled or (deepspeed is not None and deepspeed.zero_stage == 3):
        raise ConfigError(
            "eval_file: validation during training does not run under FSDP or DeepSpeed "
            "ZeRO-3 (sharded weights); evaluate the checkpoints with observe-r1 eval",
            key="eval_file",
        )
    args = trainer.args
    return Validation(
        rows,
        Path(args.output_dir) / "metrics.jsonl",
        accelerator=trainer.accelerator,
        processor=trainer.processing_class,
        every=args.eval_steps,
        response_format=args.response_format,
        max_new_tokens=args.max_completion_length,
        batch_size=args.per_device_eval_batch_size,
    )


# Validation and logging settings do not change training: a resume may change them.
UNFINGERPRINTED = ("eval_file", "eval_limit", "rollout_texts")


def run_fingerprint(config: ObserveR1Config) -> dict:
    """What a resumed run must share with the run it continues: the config (but for
    bookkeeping keys such as ``max_steps``, and the validation's) and the train file's
    content."""
    values = {k: v for k, v in config.to_dict().items() if k not in UNFINGERPRINTED}
    return config_fingerprint(
        "observe-r1", values, {"train_file": config.train_file}, ["train_file"]
    )


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _check_rollout_fits(config: ObserveR1Config, rows: int) -> None:
    """Refuse a batch whose one rollout needs more prompts than the train file has: TRL
    drops a partial rollout, so such a run would train no step and still save final/."""
    completions = config.per_device_train_batch_size * config.world_size
    prompts = completions * (config.steps_per_generation or 1) // config.num_generations
    if prompts > rows:
        raise ConfigError(
            f"'per_device_train_batch_size' {config.per_device_train_batch_size} makes a "
            f"rollout of {prompts} prompts (x {config.num_generations} generations), more "
            f"than the {rows} rows of {config.train_file}: no step would train",
            key="per_device_train_batch_size",
        )


def prepare_run(config: ObserveR1Config, *, resume: bool = False, overwrite: bool = False):
    """Check everything a run reads (output folder, train file, run folder state) and only
    then, on the main process, prepare ``output_dir``: -> (:class:`Plan`, training data,
    validation rows or None).
    Raises ``InputError`` / ``ConfigError`` / ``RunFolderError`` with nothing changed."""
    output_dir = Path(config.output_dir)
    check_writable(output_dir, "output_dir", folder=True)
    if not config.train_file:
        raise ConfigError("no train_file: set 'train_file' (a rows JSONL)", key="train_file")
    data = training_dataset(config)  # every row and image checked
    _check_rollout_fits(config, len(data[0]))
    eval_rows = read_validation_rows(config)
    plan = plan_run(
        output_dir,
        run_fingerprint(config),
        resume=resume,
        overwrite=overwrite,
        records=RECORDS,
        derived=DERIVED,
    )
    _barrier()  # every process has read the folder before the main one changes it
    if config.process_index == 0:
        apply_plan(plan)
        for name in RECORDS:
            if plan.checkpoint is None:
                (output_dir / name).unlink(missing_ok=True)
            else:
                truncate_after(output_dir / name, plan.step)
    _barrier()
    return plan, data, eval_rows


def train(config: ObserveR1Config, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Run (or ``resume``) training; return the folder of the final model. A folder that
    holds another run is refused unless ``overwrite`` (see :mod:`model_zoo.run_folder`)."""
    output_dir = Path(config.output_dir)
    plan, data, eval_rows = prepare_run(config, resume=resume, overwrite=overwrite)
    checkpoint = str(plan.checkpoint) if plan.checkpoint else None
    with undone_on_failure(plan, RECORDS, main=config.process_index == 0):
        trainer = build_trainer(config, data=data, eval_rows=eval_rows)
        trainer.train(resume_from_checkpoint=checkpoint)
    final = output_dir / "final"
    with written(final):
        save_final(trainer, final)
    if trainer.accelerator.is_main_process and (output_dir / "metrics.jsonl").is_file():
        plot_reward_curve(output_dir / "metrics.jsonl", output_dir / "reward_curve.png")
    return final


def use_full_state_dict(fsdp_plugin) -> None:
    """Make an FSDP plugin gather one full state dict when saving (offloaded to CPU, on rank
    0) instead of writing shards: accelerate's way to save a final model after sharded
    checkpoints. No-op without FSDP or when it is already full."""
    if fsdp_plugin is None or "FULL_STATE_DICT" in str(fsdp_plugin.state_dict_type):
        return
    fsdp_plugin.state_dict_config = None  # else the sharded configs would be kept
    fsdp_plugin.optim_state_dict_config = None
    fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")


def save_final(trainer, final: Path) -> None:
    """The trained model as a plain Hugging Face folder (+ processor), written through the
    trainer's own save path, which gathers FSDP and DeepSpeed ZeRO-3 shards: every process
    must call it. LoRA: the adapter is saved the same way, then merged on the main process
    into a fresh fp32 copy of the base model (a bf16 merge would round small deltas away)."""
    use_full_state_dict(getattr(trainer.accelerator.state, "fsdp_plugin", None))
    lora = is_peft_model(trainer.accelerator.unwrap_model(trainer.model))
    target = final / "adapter" if lora else final
    trainer.save_model(str(target))
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        if lora:
            from peft import PeftModel

            folder = resolve(trainer.args.model)
            base = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32)
            merged = PeftModel.from_pretrained(base, target).merge_and_unload()
            merged.save_pretrained(final)
            shutil.rmtree(target)
        save_processor(trainer.processing_class, final)
    trainer.accelerator.wait_for_everyone()
