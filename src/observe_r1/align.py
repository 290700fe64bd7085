"""``observe-r1 align``: make the assembled default VLM see, then speak the format.

Stage 1 (LLaVA stage-1 alignment): only the MLP projector trains, on images with exact
captions (``caption`` field), next-token loss on the caption. Stage 2 (optional, a
documented deviation from the paper, whose 3B instruct model already follows formats): a
short LoRA SFT of the language model on ``<observe>caption</observe><think>rationale</think>
<answer>answer</answer>`` targets, so a 135M model can emit the format at all. As in LLaVA's
stage 2, the projector keeps training there by default (saved inside the adapter as a PEFT
``modules_to_save`` copy, so checkpoints and resume include it).

Outputs in ``out``: ``projector.safetensors``, ``lora/`` (stage 2) and ``SHA256SUMS`` --
exactly the asset layout :mod:`model_zoo.smolvlm` verifies and assembles. Each stage runs on
transformers' ``Trainer`` (progress bar, ``checkpoint-*``, resume).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from PIL import Image
from safetensors.torch import save_file
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from model_zoo.checkpoints import RenamedWeightsResume
from observe_r1.data.prompts import conversation
from observe_r1.evaluation.evaluate import question_and_gold

CAPTION_REQUEST = "Describe the image exactly."
LANGUAGE_LORA_TARGETS = (
    r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
)


def caption_messages(row: dict[str, Any]) -> list[dict]:
    """Stage 1 chat: the image and a fixed request; the answer is the caption."""
    user = [{"type": "image"}, {"type": "text", "text": CAPTION_REQUEST}]
    return [{"role": "user", "content": user}]


def formatted_target(row: dict[str, Any]) -> str:
    """The Observe-R1 response a row teaches in stage 2 (a choice row answers its letter)."""
    gold = question_and_gold(row)[1]
    return (
        f"<observe>{row['caption']}</observe><think>{row['rationale']}</think>"
        f"<answer>{gold}</answer>"
    )


@dataclass
class ChatCollator:
    """Batches (prompt messages, target text, image) with loss on the target only.

    Right padding; labels are -100 on the prompt (image tokens included) and on padding.
    """

    processor: Any

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        tokenizer = self.processor.tokenizer
        prompts = [
            self.processor.apply_chat_template(
                e["messages"], add_generation_prompt=True, tokenize=False
            )
            for e in examples
        ]
        fulls = [
            prompt + example["target"] + tokenizer.eos_token
            for prompt, example in zip(prompts, examples, strict=True)
        ]
        images = [Image.open(e["image"]).convert("RGB") for e in examples]
        batch = self.processor(
            text=fulls, images=images, return_tensors="pt", padding=True, padding_side="right"
        )
        prompt_ids = self.processor(text=prompts, images=images, padding=False)["input_ids"]
        labels = batch["input_ids"].clone()
        for row, ids in enumerate(prompt_ids):
            labels[row, : len(ids)] = -100
        labels[batch["attention_mask"] == 0] = -100
        batch["labels"] = labels
        return batch


def stage_dataset(rows: list[dict[str, Any]], stage: str, response_format: str) -> Dataset:
    if stage == "projector":
        records = [
            {"messages": caption_messages(r), "target": r["caption"], "image": r["image"]}
            for r in rows
        ]
    else:  # asked exactly as training and evaluation ask it: choices lettered
        records = [
            {
                "messages": conversation(question_and_gold(r)[0], response_format),
                "target": formatted_target(r),
                "image": r["image"],
            }
            for r in rows
        ]
    return Dataset.from_list(records)


class StageTrainer(RenamedWeightsResume, Trainer):
    """``Trainer`` whose resume restores the LLaVA weights (see model_zoo.checkpoints)."""


def train_stage(
    model,
    processor,
    dataset: Dataset,
    out: Path,
    *,
    max_steps: int,
    learning_rate: float,
    batch_size: int,
    resume: bool,
    seed: int = 0,
) -> None:
    """One Trainer run over ``dataset`` writing checkpoints into ``out``."""
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, max_steps // 20),
        logging_steps=max(1, max_steps // 20),
        save_steps=max(1, max_steps // 4),
        save_total_limit=1,
        remove_unused_columns=False,
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        seed=seed,
        dataloader_num_workers=0,
    )
    trainer = StageTrainer(
        model=model, args=args, train_dataset=dataset, data_collator=ChatCollator(processor)
    )
    checkpoint = get_last_checkpoint(str(out)) if resume and out.is_dir() else None
    trainer.train(resume_from_checkpoint=checkpoint)


def projector_state(model) -> dict[str, torch.Tensor]:
    state = model.model.multi_modal_projector.state_dict()
    return {name: tensor.detach().contiguous() for name, tensor in state.items()}


def freeze_all_but_projector(model) -> None:
    for name, parameter in model.named_parameters():
        parameter.requires_grad = "multi_modal_projector" in name


def save_projector(model, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_file(projector_state(model), out / "projector.safetensors")


def add_language_lora(model, rank: int, tune_projector: bool):
    """Freeze everything, then attach LoRA to the language model's attention and MLP;
    ``tune_projector``: the projector trains too, as a full copy stored with the adapter."""
    from peft import LoraConfig, get_peft_model

    for parameter in model.parameters():
        parameter.requires_grad = False
    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        lora_dropout=0.05,
        target_modules=LANGUAGE_LORA_TARGETS,
        modules_to_save=["multi_modal_projector"] if tune_projector else None,
    )
    return get_peft_model(model, config)


def run_align(
    rows: list[dict[str, Any]],
    assets_out: Path,
    work: Path,
    *,
    projector_steps: int = 200,
    format_steps: int = 100,
    batch_size: int = 8,
    projector_lr: float = 1e-3,
    lora_lr: float = 2e-4,
    lora_rank: int = 8,
    format_tunes_projector: bool = True,
    response_format: str = "observe",
    resume: bool = False,
    parts: tuple[str, str] | None = None,
) -> Path:
    """Both stages on ``rows`` (fields image, caption; plus question, rationale, answer for
    stage 2); assets written to ``assets_out``. ``parts`` = (vision, language) folders,
    default the zoo's DINOv2-S and SmolLM2."""
    from model_zoo import resolve
    from model_zoo.smolvlm import assemble, write_checksums

    vision, language = parts or (resolve("dinov2-small"), resolve("smollm2-135m-instruct"))
    model, processor = assemble(vision, language)
    if projector_steps > 0:
        freeze_all_but_projector(model)
        train_stage(
            model,
            processor,
            stage_dataset(rows, "projector", response_format),
            work / "projector",
            max_steps=projector_steps,
            learning_rate=projector_lr,
            batch_size=batch_size,
            resume=resume,
        )
    save_projector(model, assets_out)
    if format_steps > 0:
        lora_model = add_language_lora(model, lora_rank, format_tunes_projector)
        train_stage(
            lora_model,
            processor,
            stage_dataset(rows, "format", response_format),
            work / "format",
            max_steps=format_steps,
            learning_rate=lora_lr,
            batch_size=batch_size,
            resume=resume,
        )
        lora_model.save_pretrained(assets_out / "lora")
        (assets_out / "lora" / "README.md").unlink(missing_ok=True)  # PEFT's blank model card
    write_checksums(assets_out)
    return assets_out
