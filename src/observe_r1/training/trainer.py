"""``ObserveR1Trainer``: TRL's ``GRPOTrainer`` with Observe-R1 group shaping.

Two hooks of TRL 1.16, both kept small (and ``_generate``, only to hand TRL's processor
call ``[]`` instead of ``None`` for a text-only row's images):

- ``_calculate_rewards`` (returns rewards gathered over all processes): also gathers the
  completion lengths, in the same order, and stashes both.
- ``_generate_and_score_completions``: after the stock pass, replaces ``advantages`` by
  :func:`observe_r1.training.shaping.shape_advantages` over the gathered groups (contiguous blocks
  of ``num_generations`` in the gathered order) and keeps this process's slice. TRL's own
  logged advantages and ``frac_reward_zero_std`` are rewritten to describe the shaped ones.
  With ``filter_groups`` (dynamic sampling) it runs that pass on the ladder's next prompts
  until every process holds a round of kept groups (:meth:`_refilled_round`).

:func:`check_trl_hooks` fails loudly at import if an upgrade of TRL moves either hook.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate.utils import gather_object, is_peft_model, send_to_device
from trl import GRPOTrainer

from model_zoo.checkpoints import RenamedWeightsResume
from model_zoo.training_guards import GuardedTrainer, json_line, written
from observe_r1.rewards import completion_text
from observe_r1.training.group_filter import PromptOrder, keep_groups, take_groups
from observe_r1.training.pixels import PixelBounds, bounded_image
from observe_r1.training.rollout_generation import patched_generate
from observe_r1.training.round_merge import merge_rounds
from observe_r1.training.shaping import bonus_mask, difficulty_weight, shape_advantages
from observe_r1.training.shared_prompt import (
    QWEN_IMAGE_INPUTS,
    add_shared_prompt_forward,
    check_engine,
)

_HOOKS = {
    "_calculate_rewards": ["self", "inputs", "prompts", "completions", "completion_ids_list"],
    "_generate_and_score_completions": ["self", "inputs"],
    "_generate": ["self", "prompts"],  # only for text-only rows: see ObserveR1Trainer._generate
    "_get_per_token_logps_and_entropies": [  # share_prompt_forward
        "self",
        "model",
        "input_ids",
        "attention_mask",
        "logits_to_keep",
        "batch_size",
        "compute_entropy",
        "compute_aux_loss",
        "pixel_values",
        "image_grid_thw",
        "num_images",
        "pixel_attention_mask",
        "spatial_shapes",
        "num_tiles",
        "image_sizes",
        "token_type_ids",
        "mm_token_type_ids",
        "image_position_ids",
    ],
}
GENERATED_IMAGES = 6  # the position of the prompts' images in what TRL's _generate returns


def check_trl_hooks() -> None:
    """Raise if TRL no longer has the methods this trainer overrides, as expected."""
    for name, expected in _HOOKS.items():
        method = getattr(GRPOTrainer, name, None)
        found = list(inspect.signature(method).parameters) if method else None
        if found != expected:
            raise RuntimeError(
                f"TRL's GRPOTrainer.{name} changed (expected parameters {expected}, "
                f"found {found}): port ObserveR1Trainer's shaping hook to this TRL version"
            )


check_trl_hooks()

ROUND_STATE = "observe_r1_round-{rank}.pt"  # in a checkpoint: TRL's buffered round, per rank


class ResumeError(RuntimeError):
    """A checkpoint this trainer cannot continue from exactly."""


def round_position(micro_steps: int, steps_per_generation: int, num_iterations: int) -> int:
    """How many micro-steps of the current generation round are done (0: on a boundary)."""
    return micro_steps % (steps_per_generation * num_iterations)


IMAGE_INPUTS = ("pixel_values", "image_grid_thw", "image_sizes", "image_position_ids")


def drop_empty_images(module, args, kwargs):
    """Forward pre-hook: drop image inputs that hold no image. TRL slices a round's
    ``pixel_values`` per micro-batch, so a micro-batch of text-only rows in a round with
    images gets an empty tensor, which Qwen-VL's and LLaVA's vision towers cannot take."""
    pixels = kwargs.get("pixel_values")
    if pixels is None or pixels.numel() > 0:
        return None
    return args, {k: v for k, v in kwargs.items() if k not in IMAGE_INPUTS}


@dataclass
class Scored:
    """One generation pass, gathered over all processes: ``rewards_per_func``
    ``(N, num_funcs)``; ``rewards``, ``correct``, ``lengths``, ``advantages`` (shaped)
    ``(N / G, G)``."""

    rewards_per_func: torch.Tensor
    rewards: torch.Tensor
    correct: torch.Tensor
    lengths: torch.Tensor
    advantages: torch.Tensor
    texts: list[str] | None = None  # (N,) the completions, with ``rollout_texts``


@dataclass
class _Pass:
    """One generation pass of a refilled round: this process's ``batch`` and TRL ``output``,
    the gathered ``scored``, ``keep`` ``(groups,)`` and ``taken`` ``(world, per_rank)``."""

    batch: list[dict]
    output: dict
    scored: Scored
    keep: torch.Tensor
    taken: torch.Tensor


class ObserveR1Trainer(GuardedTrainer, RenamedWeightsResume, GRPOTrainer):
    """GRPO with the Observe-R1 bonus and dynamic weighting (see ``ObserveR1Config``).

    Needs a reward function named ``"accuracy"`` (1.0 = correct). When ``rollout_log`` is set,
    the main process appends one JSON line per completion: step, row id, rewards, length,
    correctness and the advantage used for training (and the text, with ``rollout_texts``).
    """

    def __init__(
        self,
        *args,
        rollout_log: str | Path | None = None,
        pixel_bounds: PixelBounds | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.pixel_bounds = pixel_bounds
        for model in (self.model, self.ref_model):  # text-only micro-batches: see the hook
            if model is not None:
                model.register_forward_pre_hook(drop_empty_images, with_kwargs=True)
        if "accuracy" not in self.reward_func_names:
            raise ValueError("ObserveR1Trainer needs a reward function named 'accuracy'")
        self._accuracy_column = self.reward_func_names.index("accuracy")
        self.rollout_log = Path(rollout_log) if rollout_log else None
        self._gathered: tuple[torch.Tensor, torch.Tensor] | None = None
        self._gathered_texts: list[str] | None = None
        # Under bf16 autocast the frozen reference needs no fp32 copy (DeepSpeed / FSDP
        # already built it in the policy's bf16): half the memory, same matmul inputs.
        engine = self.is_deepspeed_enabled or self.is_fsdp_enabled
        if self.args.bf16 and self.ref_model is not None and not engine:
            self.ref_model.to(torch.bfloat16)
        if self.args.share_prompt_forward:
            plugin = self.accelerator.state.deepspeed_plugin if engine else None
            check_engine(getattr(plugin, "zero_stage", None))
            for model in (self.model, self.ref_model):
                if model is not None:
                    base = model.get_base_model() if is_peft_model(model) else model
                    add_shared_prompt_forward(
                        base, self.temperature, self.args.cast_lm_head_to_fp32
                    )
        self._prompt_order = None
        if self.args.filter_groups:  # dynamic sampling deals the prompts itself
            order = PromptOrder(
                len(self.train_dataset), shuffle=self.shuffle_dataset, seed=self.args.seed
            )
            self._prompt_order = order

    # Exact resume inside a generation round. TRL generates a round every
    # steps_per_generation x num_iterations micro-steps and trains on slices of its buffer;
    # a resumed TRL run starts with an empty buffer and _step = 0, so it would regenerate
    # the round and fall out of step with the rounds. Each rank saves its buffer and _step
    # with the checkpoint and loads them back (the Trainer restores weights, optimizer, RNG
    # and the data position itself).

    def _round_position(self, micro_steps: int) -> int:
        return round_position(micro_steps, self.args.steps_per_generation, self.num_iterations)

    def _save_checkpoint(self, model, trial):
        # Written first, whole (temporary name, then renamed), and on every rank before the
        # Trainer writes trainer_state.json: a checkpoint that looks complete has its round.
        folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
        os.makedirs(folder, exist_ok=True)
        inside = self._round_position(self._step) != 0
        state = {
            "step": self._step,
            "world_size": self.accelerator.num_processes,
            "buffer": self._buffered_inputs if inside else None,
            "prompt_position": self._prompt_order and self._prompt_order.position,
        }
        path = folder / ROUND_STATE.format(rank=self.accelerator.process_index)
        with written(folder):
            torch.save(state, path.with_suffix(".tmp"))
            os.replace(path.with_suffix(".tmp"), path)
        self.accelerator.wait_for_everyone()
        super()._save_checkpoint(model, trial)

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        micro_steps = self.state.global_step * self.args.gradient_accumulation_steps
        path = Path(checkpoint) / ROUND_STATE.format(rank=self.accelerator.process_index)
        if not path.is_file():
            if self._prompt_order is not None:
                raise ResumeError(
                    f"{checkpoint} holds no saved round ({path.name}), so not how many "
                    "prompts dynamic sampling (filter_groups) had dealt"
                )
            if self._round_position(micro_steps):
                raise ResumeError(
                    f"{checkpoint} lies inside a generation round (micro-step "
                    f"{self._round_position(micro_steps)} of "
                    f"{self.args.steps_per_generation * self.num_iterations}) and holds no "
                    f"saved round ({path.name}): resume from a checkpoint on a round "
                    "boundary, i.e. save_steps x gradient_accumulation_steps a multiple "
                    "of steps_per_generation x num_iterations"
                )
            return
        state = torch.load(path, map_location="cpu", weights_only=False)  # our own file
        if state["buffer"] is not None and state["world_size"] != self.accelerator.num_processes:
            raise ResumeError(
                f"{checkpoint} was written by {state['world_size']} processes, resumed with "
                f"{self.accelerator.num_processes}: its saved generation round does not split"
            )
        self._step = state["step"]
        self._buffered_inputs = send_to_device(state["buffer"], self.accelerator.device)
        if self._prompt_order is not None:
            if state.get("prompt_position") is None:
                raise ResumeError(
                    f"{checkpoint} was written without dynamic sampling (filter_groups): "
                    "the prompts it dealt are not known"
                )
            self._prompt_order.position = state["prompt_position"]

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(
            inputs, prompts, completions, completion_ids_list
        )
        lengths = torch.tensor(
            [len(ids) for ids in completion_ids_list], device=rewards_per_func.device
        )
        self._gathered = (rewards_per_func, self.accelerator.gather(lengths))
        self._gathered_texts = (
            gather_object([completion_text(c) for c in completions])
            if self.args.rollout_texts
            else None
        )
        return rewards_per_func

    def _generate(self, prompts):
        policy = self.accelerator.unwrap_model(self.model_wrapped)
        with self._generation_autocast(), patched_generate(policy):
            result = super()._generate(prompts)
        # TRL 1.16 marks a prompt without images as None in the images it returns, then hands
        # them to the processor, which refuses None: a text-only row in a round with images.
        # The processor takes [] for it (no image), as TRL's dataset path does.
        images = result[GENERATED_IMAGES]
        if images is not None and any(image_list is None for image_list in images):
            images = [image_list or [] for image_list in images]
            result = (*result[:GENERATED_IMAGES], images, *result[GENERATED_IMAGES + 1 :])
        return result

    def _get_per_token_logps_and_entropies(
        self,
        model,
        input_ids,
        attention_mask,
        logits_to_keep,
        batch_size=None,
        compute_entropy=False,
        compute_aux_loss=False,
        pixel_values=None,
        num_images=None,
        **other_inputs,
    ):
        """With ``share_prompt_forward``: each group's prompt runs once
        (`observe_r1.training.shared_prompt`; the stock path chunks by ``batch_size``, this one by
        group). Log-probabilities and entropies ``(B, T)``, no auxiliary loss."""
        if not self.args.share_prompt_forward:
            return super()._get_per_token_logps_and_entropies(
                model,
                input_ids,
                attention_mask,
                logits_to_keep,
                batch_size,
                compute_entropy,
                compute_aux_loss,
                pixel_values=pixel_values,
                num_images=num_images,
                **other_inputs,
            )
        images = {name: other_inputs.pop(name, None) for name in QWEN_IMAGE_INPUTS}
        given = sorted(name for name, value in other_inputs.items() if value is not None)
        if given or compute_aux_loss:
            raise RuntimeError(
                f"share_prompt_forward takes images as {', '.join(QWEN_IMAGE_INPUTS)} "
                f"and pixel_values, got {given or ['an MoE auxiliary loss']}: set "
                "share_prompt_forward false"
            )
        with self.accelerator.autocast():
            output = model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                logits_to_keep=logits_to_keep,
                pixel_values=pixel_values,
                num_images=num_images,
                compute_entropy=compute_entropy,
                shared_prompt=True,
                **images,
            )
        return output.log_probs, output.entropy, None

    def _generation_autocast(self) -> torch.autocast:
        """One bf16 autocast region around a whole generation, where ``bf16`` trains fp32
        weights under autocast. Autocast keeps the bf16 cast of each fp32 weight until its
        outermost region ends; accelerate opens a region per forward, so each decoded token
        would cast every weight again: the same casts, made once per rollout."""
        fp32_weights = next(self.model.parameters()).dtype == torch.float32
        return torch.autocast(
            self.accelerator.device.type,
            dtype=torch.bfloat16,
            enabled=bool(self.args.bf16) and fp32_weights,
        )

    def _bounded(self, example: dict) -> dict:
        bounds = self.pixel_bounds
        example = dict(example)
        if example.get("image") is not None:
            example["image"] = bounded_image(example["image"], bounds)
        if example.get("images"):
            example["images"] = [bounded_image(image, bounds) for image in example["images"]]
        return example

    def _generate_and_score_completions(self, inputs):
        if self._prompt_order is not None and self.model.training:
            return self._refilled_round(len(inputs))
        output, scored = self._score(inputs)
        self._write_rollouts(inputs, scored)
        return output

    def _score(self, inputs) -> tuple[dict, Scored]:
        """TRL's pass over ``inputs`` with the shaped advantages (see the module doc)."""
        if self.pixel_bounds is not None:
            inputs = [self._bounded(example) for example in inputs]
        output = super()._generate_and_score_completions(inputs)
        rewards_per_func, lengths = self._gathered
        mode = "train" if self.model.training else "eval"
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        weights = self.reward_weights.to(rewards_per_func.device)
        rewards = (rewards_per_func * weights).nansum(dim=1).view(-1, group_size)
        correct = (rewards_per_func[:, self._accuracy_column] >= 1.0).view(-1, group_size)
        lengths = lengths.view(-1, group_size)
        args = self.args
        advantages = shape_advantages(
            rewards,
            correct,
            lengths,
            use_bonus=args.use_bonus,
            bonus=args.bonus,
            bonus_min_length=args.bonus_min_length,
            use_dynamic_weight=args.use_dynamic_weight,
            sigma=args.sigma,
            eps=args.advantage_eps,
            scale=args.scale_rewards == "group",
        )
        start = self.accelerator.process_index * len(inputs)  # this process's completions
        local = advantages.view(-1)[start : start + len(inputs)]
        output["advantages"] = local.to(output["advantages"].dtype)

        bonus = bonus_mask(correct, lengths, args.bonus_min_length) if args.use_bonus else None
        accuracy = correct.float().mean(dim=1)
        metrics = self._metrics[mode]
        metrics["observe_r1/bonus_rate"].append(
            0.0 if bonus is None else bonus.any(1).float().mean().item()
        )
        metrics["observe_r1/difficulty_weight_mean"].append(
            difficulty_weight(accuracy, args.sigma).mean().item()
        )
        zero_signal = (advantages == 0).all(dim=1)
        metrics["observe_r1/zero_signal_groups"].append(zero_signal.float().sum().item())
        # TRL logged its stock advantages and the share with zero reward std: describe the
        # shaped ones instead (the share of groups, = of completions, that carry no signal)
        metrics["frac_reward_zero_std"][-1] = zero_signal.float().mean().item()
        logged = self._logs["advantages"]
        for _ in range(advantages.numel()):
            logged.pop()
        logged.extend(advantages.view(-1).tolist())
        scored = Scored(
            rewards_per_func, rewards, correct, lengths, advantages, texts=self._gathered_texts
        )
        return output, scored

    def _refilled_round(self, size: int) -> dict:
        """A round of ``size`` completions per process, all from groups that meet none of
        ``filter_groups``: passes over the next prompts of the ladder (each process dealt
        its share of every pass, as TRL deals a round) until each process holds enough kept
        groups (the first ones, in ladder order; later kept ones are discarded), at most
        ``1 + max_refill_rounds`` passes. A process still short then takes its first
        dropped groups, as they are. Every process computes the same decisions from the
        gathered rewards, so all run the same number of passes."""
        args, accelerator = self.args, self.accelerator
        world, rank = accelerator.num_processes, accelerator.process_index
        group = self.num_generations
        per_rank = size // group
        need, passes = [per_rank] * world, []
        while any(need) and len(passes) <= args.max_refill_rounds:
            dealt = self._prompt_order.take(per_rank * world)
            mine = dealt[rank * per_rank : (rank + 1) * per_rank]
            batch = [self.train_dataset[i] for i in mine for _ in range(group)]
            output, scored = self._score(batch)
            keep = keep_groups(scored.rewards, scored.correct, args.filter_groups)
            taken, need = take_groups(keep.view(world, per_rank), need)
            passes.append(_Pass(batch, output, scored, keep, taken))
        filled = 0
        for item in passes:  # the bound was hit: complete with the first dropped groups
            if not any(need):
                break
            extra, need = take_groups(~item.taken, need)
            item.taken |= extra
            filled += int(extra.sum())
        parts = []
        for item in passes:
            trained = item.taken.view(-1).repeat_interleave(group)
            self._write_rollouts(item.batch, item.scored, trained=trained)
            groups = item.taken[rank].nonzero().view(-1).tolist()
            rows = [g * group + k for g in groups for k in range(group)]
            if rows:
                parts.append((item.output, rows))
        merged = merge_rounds(parts, self._tokenizer.pad_token_id)
        mask = merged["completion_mask"]
        if merged.get("tool_mask") is not None:
            mask = mask * merged["tool_mask"]
        merged["num_items_in_batch"] = accelerator.gather(mask.sum()).sum()
        metrics = self._metrics["train"]
        dropped = sum(int((~item.keep).sum()) for item in passes)
        metrics["observe_r1/groups_dropped"].append(dropped)
        metrics["observe_r1/groups_filled"].append(filled)
        metrics["observe_r1/prompts_consumed"].append(len(passes) * per_rank * world)
        metrics["observe_r1/refill_rounds"].append(len(passes) - 1)
        return merged

    def _write_rollouts(self, inputs, scored: Scored, trained=None) -> None:
        """One line per gathered completion; ``trained`` (dynamic sampling): whether its
        group is in the round trained on."""
        row_ids = gather_object([example.get("row_id") for example in inputs])
        if self.rollout_log is None or not self.accelerator.is_main_process:
            return
        rewards_per_func, lengths = scored.rewards_per_func, scored.lengths.view(-1)
        correct, advantages = scored.correct.view(-1), scored.advantages.view(-1)
        step = self.state.global_step + 1
        with written(self.rollout_log), self.rollout_log.open("a") as handle:
            for index, row_id in enumerate(row_ids):
                record = {
                    "step": step,
                    "row_id": row_id,
                    "rewards": dict(
                        zip(self.reward_func_names, rewards_per_func[index].tolist(), strict=True)
                    ),
                    "length": int(lengths[index]),
                    "correct": bool(correct[index]),
                    "advantage": float(advantages[index]),
                }
                if trained is not None:
                    record["trained"] = bool(trained[index])
                if scored.texts is not None:
                    record["text"] = scored.texts[index]
                handle.write(json_line(record))
