"""``EagerTrainer``: transformers' ``Trainer`` on an :class:`EagerLLM`.

- ``compute_loss`` takes the model's own loss (LM + weighted GCT, a per-micro-batch mean;
  the Trainer divides it by the accumulation steps) and sums its parts, which ``log`` adds
  to each training log as means over the logging interval and all processes.
- The optimizer gives the GCT projectors their own learning rate (``projector_lr``) and
  the rows of the index tokens theirs (``index_token_lr``): a separate parameter group
  where they are separate tensors (LoRA's trainable-token deltas), else
  :class:`RowLearningRate` on the shared embedding matrix.
- ``evaluate`` is the ranking validation (:mod:`.validation`): ``eval_recall@10`` and
  ``eval_ndcg@10``, which ``metric_for_best_model`` / ``load_best_model_at_end`` use, and
  every user's rank in ``validation_ranks.jsonl`` (paired comparisons of two points). The
  starting model validated by ``eval_on_start`` is a candidate too (``checkpoint-0``):
  Trainer alone never selects step 0, so annealing could not fall back to its stage-1 model.
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
from transformers.trainer_pt_utils import LengthGroupedSampler, nested_gather

from model_zoo.training_guards import GuardedTrainer

from .run_log import append_validation_ranks

PROJECTORS = "projectors.safetensors"
PARTS = ("lm_loss", "gct_sem", "gct_beh")


def save_projectors(state: dict[str, torch.Tensor], path: Path) -> None:
    save_file({key: value.detach().contiguous().cpu() for key, value in state.items()}, path)


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}


class RowLearningRate:
    """Scale each optimizer step of chosen rows of a parameter by ``ratio``.

    Adam's (and AdamW's decoupled decay) step is proportional to the learning rate, so
    ``row <- before + ratio * (after - before)`` is exactly that step at ``ratio`` times the
    learning rate, schedule included. ``rows``: list of (parameter (V, H), row ids).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, rows, ratio: float) -> None:
        self.rows, self.ratio = rows, ratio
        self._before: list[torch.Tensor] = []
        optimizer.register_step_pre_hook(self._save)
        optimizer.register_step_post_hook(self._scale)

    def _save(self, optimizer, args, kwargs) -> None:
        self._before = [param.detach()[ids].clone() for param, ids in self.rows]

    @torch.no_grad()
    def _scale(self, optimizer, args, kwargs) -> None:
        for (param, ids), before in zip(self.rows, self._before, strict=True):
            param[ids] = before + self.ratio * (param[ids] - before)


class EagerTrainer(GuardedTrainer, Trainer):
    """``Trainer`` + loss parts in the logs, learning rates per part, ranking validation.

    ``validation``: a :class:`~.validation.RankingValidation` (None: no ``evaluate``);
    ``index_token_ids``: ids of the index tokens; ``index_token_lr`` / ``projector_lr``:
    None means ``learning_rate``.
    """

    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *args,
        validation=None,
        index_token_ids=(),
        index_token_lr: float | None = None,
        projector_lr: float | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self._parts: dict[str, tuple[torch.Tensor, int]] = {}  # key -> (sum, micro-batches)
        self.validation = validation
        self.index_token_ids = list(index_token_ids)
        self.index_token_lr = index_token_lr
        self.projector_lr = projector_lr
        self.row_learning_rate: RowLearningRate | None = None

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        """The Trainer's optimizer, then the projectors and LoRA's trainable-token deltas
        moved to groups of their own rates, and :class:`RowLearningRate` on the index rows of
        a fully trained embedding matrix."""
        if self.optimizer is not None:
            return self.optimizer
        optimizer = super().create_optimizer(model)
        inner = getattr(optimizer, "optimizer", optimizer)
        eager = self.accelerator.unwrap_model(model or self.model)
        lr = self.args.learning_rate
        own = {}
        if eager.gct is not None and self.projector_lr is not None:
            own.update({id(p): self.projector_lr for p in eager.gct.parameters()})
        deltas = [p for n, p in eager.lm.named_parameters() if "trainable_tokens_delta" in n]
        if self.index_token_lr is not None:
            own.update({id(p): self.index_token_lr for p in deltas})
        for group in list(inner.param_groups):
            moved = [p for p in group["params"] if id(p) in own]
            group["params"] = [p for p in group["params"] if id(p) not in own]
            for rate in sorted({own[id(p)] for p in moved}):
                params = [p for p in moved if own[id(p)] == rate]
                inner.add_param_group({**group, "params": params, "lr": rate})
        inner.param_groups[:] = [group for group in inner.param_groups if group["params"]]
        embedding = eager.lm.get_input_embeddings().weight
        full_rows = embedding.requires_grad and not deltas  # not LoRA's frozen base
        if self.index_token_lr is not None and full_rows and self.index_token_ids:
            matrices = [embedding]
            head = eager.lm.get_output_embeddings()
            if head is not None and head.weight is not embedding and head.weight.requires_grad:
                matrices.append(head.weight)
            ids = torch.tensor(self.index_token_ids)
            rows = [(matrix, ids) for matrix in matrices]
            self.row_learning_rate = RowLearningRate(inner, rows, self.index_token_lr / lr)
        return optimizer

    def _get_train_sampler(self, train_dataset=None):
        """``train_sampling_strategy: group_by_length``: batches of similar length (less
        padding), from the dataset's ``lengths`` (characters of prompt + response) instead of
        tokenizing every sample; otherwise the Trainer's sampler.

        The groups are global batches (all processes' micro-batches of one optimizer step)
        drawn with a generator seeded by ``data_seed`` (else ``seed``): every process draws
        the same order, the one a single process draws at the same global batch, and
        accelerate deals each process its part of every global batch."""
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy == "group_by_length" and hasattr(dataset, "lengths"):
            args = self.args
            batch = args.train_batch_size * args.gradient_accumulation_steps * args.world_size
            seed = args.data_seed if args.data_seed is not None else args.seed
            generator = torch.Generator().manual_seed(seed)
            return LengthGroupedSampler(batch, lengths=dataset.lengths, generator=generator)
        return super()._get_train_sampler(train_dataset)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        """Ranking validation of the current model: ``{prefix}_recall@10``, ``_ndcg@10``."""
        if self.validation is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        lm = self.accelerator.unwrap_model(self.model).lm
        was_training = lm.training
        lm.eval()
        with self.accelerator.autocast():
            found = self.validation(lm, self.processing_class)
        lm.train(was_training)
        ranks = found.pop("ranks", None)
        if ranks is not None and self.is_world_process_zero():
            append_validation_ranks(self.args.output_dir, self.state.global_step, ranks)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in found.items() if k != "n_users"}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(
            self.args, self.state, self.control, metrics
        )
        if self.is_in_train and self.state.global_step == 0 and self.args.load_best_model_at_end:
            self._keep_start_candidate(metrics)
        return metrics

    def _keep_start_candidate(self, metrics: dict[str, float]) -> None:
        """Save ``checkpoint-0`` (kept as it is when a run resumes from it) and point
        ``best_model_checkpoint`` at it while step 0 is the best (Trainer records a best
        step 0 but, 0 being falsy, never points at its checkpoint). The pointer is set
        before the save, so the state saved with every checkpoint holds it and a run resumed
        from any of them still ends on step 0's model while that is the best."""
        self._determine_best_metric(metrics, trial=None)
        start = os.path.join(self.args.output_dir, "checkpoint-0")
        if self.state.best_global_step == 0:
            self.state.best_model_checkpoint = start
        if not os.path.isdir(start):
            self._save_checkpoint(self.model, trial=None)

    def _load_best_model(self) -> None:
        """The best checkpoint, read the way a resumed run reads one (LM + projectors)."""
        self._load_from_checkpoint(self.state.best_model_checkpoint)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        self.add_parts(outputs)
        return (outputs["loss"], outputs) if return_outputs else outputs["loss"]

    def logged_parts(self) -> tuple[str, ...]:
        """The keys of the micro-batch values that training logs average."""
        has_gct = self.accelerator.unwrap_model(self.model).gct is not None
        return PARTS if has_gct else ("lm_loss",)

    def add_parts(self, values: dict[str, torch.Tensor]) -> None:
        """Add one micro-batch's values of :meth:`logged_parts` (those present) to the sums
        the next training log averages."""
        for key in self.logged_parts():
            if key in values:
                total, count = self._parts.get(key, (0.0, 0))
                self._parts[key] = (total + values[key].detach(), count + 1)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Training logs get the mean of each of :meth:`logged_parts` over the micro-batches
        (of all processes) since the last log; GCT parts count only batches with seqrec rows."""
        if "loss" in logs:
            for key in self.logged_parts():
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
