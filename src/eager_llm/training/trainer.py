"""``EagerTrainer``: transformers' ``Trainer`` on an :class:`EagerLLM`.

- ``compute_loss`` takes the model's own loss (LM + weighted GCT, a per-micro-batch mean;
  the Trainer divides it by the accumulation steps) and sums its parts, which ``log`` adds
  to each training log as means over the logging interval and all processes.
- A checkpoint holds the LM as ``save_pretrained`` writes it (full weights, or the adapter
  of a PEFT model), ``projectors.safetensors`` when GCT runs, the tokenizer and the
  Trainer's state, so a resumed run restores every trained tensor.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import Trainer
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.trainer_pt_utils import nested_gather

PROJECTORS = "projectors.safetensors"
PARTS = ("lm_loss", "gct_sem", "gct_beh")


def save_projectors(state: dict[str, torch.Tensor], path: Path) -> None:
    save_file({key: value.detach().contiguous().cpu() for key, value in state.items()}, path)


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}


class EagerTrainer(Trainer):
    loss_is_scaled_for_ga = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._parts: dict[str, tuple[torch.Tensor, int]] = {}  # key -> (sum, micro-batches)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        for key in PARTS:
            if key in outputs:
                total, count = self._parts.get(key, (0.0, 0))
                self._parts[key] = (total + outputs[key].detach(), count + 1)
        return (outputs["loss"], outputs) if return_outputs else outputs["loss"]

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Training logs get the mean of each loss part over the micro-batches (of all
        processes) since the last log; GCT parts count only batches with seqrec rows."""
        if "loss" in logs:
            has_gct = self.accelerator.unwrap_model(self.model).gct is not None
            for key in PARTS if has_gct else ("lm_loss",):
                total, count = self._parts.pop(key, (0.0, 0))
                local = torch.tensor([float(total), count], device=self.args.device)
                total, count = nested_gather(local, self.args.parallel_mode).view(-1, 2).sum(0)
                if count:
                    logs[key] = (total / count).item()
        super().log(logs, start_time)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        if state_dict is None:
            model.lm.save_pretrained(output_dir)
            projectors = model.gct.state_dict() if model.gct is not None else None
        else:  # FSDP / DeepSpeed pass the gathered state of the whole module
            model.lm.save_pretrained(output_dir, state_dict=_strip(state_dict, "lm."))
            projectors = _strip(state_dict, "gct.") if model.gct is not None else None
        if projectors is not None:
            save_projectors(projectors, Path(output_dir) / PROJECTORS)
        self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        model = self.accelerator.unwrap_model(model or self.model)
        super()._load_from_checkpoint(resume_from_checkpoint, model=model.lm)
        if model.gct is not None:
            model.gct.load_state_dict(load_file(Path(resume_from_checkpoint) / PROJECTORS))
