"""The trained module: a causal LM (optionally with a LoRA adapter) plus, in stage 1, GCT.

:class:`EagerLLM` is what ``Trainer`` optimises, one ``nn.Module`` so that DDP, FSDP or
DeepSpeed see the projectors as part of the model. Its forward computes the whole loss
(``LM + w_sem * GCT_sem + w_beh * GCT_beh``); GCT applies to seqrec rows only.

LoRA (stage 2 always, stage 1 optionally): adapters on the attention and MLP projections,
and the rows of the index tokens in the input embeddings and the LM head trainable through
PEFT's ``trainable_token_indices``. The original vocabulary stays frozen, so the backbone's
language knowledge is untouched, and only ``n_index_tokens x H`` extra parameters train
instead of two full ``vocab x H`` copies (``modules_to_save``). With tied embeddings (SmolLM2)
one trainable-token delta serves both ends; untied models (tiny-llama, LLaMA) get one each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer

from eager_llm.indexing import add_index_tokens, index_vocabulary

from .gct import GCTHead
from .ranks import share, total

ATTENTION_MLP = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass
class LoraSettings:
    r: int = 8
    alpha: int = 32
    dropout: float = 0.05
    targets: Sequence[str] | str = ATTENTION_MLP  # module names, or "all-linear"


def load_lm(
    folder: str,
    item_index: Mapping[str, Sequence[str]],
    dtype: str = "float32",
    item_titles: Mapping[str, str] | None = None,
    token_vectors: Mapping[str, np.ndarray] | None = None,
):
    """(tokenizer, causal LM) from ``folder`` with the index tokens added (a no-op when the
    model already has them, e.g. a stage-1 result); new rows start from ``token_vectors``
    and the items' titles when given (:func:`eager_llm.indexing.add_index_tokens`)."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    lm = AutoModelForCausalLM.from_pretrained(folder, dtype=DTYPES[dtype])
    add_index_tokens(tokenizer, lm, item_index, item_titles, token_vectors)
    return tokenizer, lm


def _module_name(model: nn.Module, module: nn.Module) -> str:
    return next(name for name, candidate in model.named_modules() if candidate is module)


def add_lora(lm, settings: LoraSettings, token_ids: Sequence[int]):
    """``lm`` as a PEFT model: LoRA on ``settings.targets`` and the ``token_ids`` rows of the
    embeddings (and of an untied LM head) trainable; everything else frozen."""
    from peft import LoraConfig, get_peft_model

    layers = [lm.get_input_embeddings()]
    head = lm.get_output_embeddings()
    if head is not None and head.weight is not layers[0].weight:  # untied: rows of its own
        layers.append(head)
    targets = settings.targets if isinstance(settings.targets, str) else list(settings.targets)
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets,
        trainable_token_indices={
            _module_name(lm, layer).split(".")[-1]: list(token_ids) for layer in layers
        },
        task_type="CAUSAL_LM",
    )
    return get_peft_model(lm, config)


def train_top_layers(lm, layers: int) -> None:
    """Partial fine-tuning of a plain causal LM: only its top ``layers`` decoder layers, the
    final norm and the input embeddings (with a tied LM head: the head too) keep training;
    the layers below are frozen and the embedding output is detached, so no gradient runs
    below the lowest trained layer (``layers`` >= the model's depth: every layer trains).
    A tied embedding matrix still learns, through the head (index-token rows included); an
    untied one stops learning. Backward and optimizer cost fall with the frozen share
    (SmolLM2-135M: top 4 of 30 layers ~2x faster steps, results/eager_demo.md)."""
    blocks = decoder_and_head(lm)[0].layers
    if layers < 1:
        raise ValueError(f"train_layers must be >= 1, got {layers}")
    if layers >= len(blocks):  # every layer: full fine-tuning
        return
    for block in blocks[: len(blocks) - layers]:
        block.requires_grad_(False)
    lm.get_input_embeddings().register_forward_hook(_detached)


def _detached(module, inputs, output):
    return output.detach()


def index_token_ids(tokenizer, item_index: Mapping[str, Sequence[str]]) -> list[int]:
    """Token ids of all index tokens, by level then value."""
    return tokenizer.convert_tokens_to_ids(index_vocabulary(item_index))


def decoder_and_head(lm) -> tuple[nn.Module, nn.Module]:
    """The transformer body (ids -> final normed hidden states) and the LM head of ``lm``,
    a plain or PEFT causal LM (adapters and trainable-token wrappers stay in place)."""
    base = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
    return base.get_decoder(), base.get_output_embeddings()


def labelled_lm_loss(
    hidden: torch.Tensor, labels: torch.Tensor, head: nn.Module, reduction: str = "mean"
) -> torch.Tensor:
    """Next-token cross-entropy with the LM head applied only where a label is predicted.

    hidden: (B, T, H) final hidden states; labels: (B, T), ``-100`` where ignored. Position
    ``t`` predicts ``labels[:, t + 1]``; the mean (``reduction="sum"``: the sum) runs over
    the predicted tokens, as in transformers' causal-LM loss, but the (B, T, V) logits of
    prompt and padding positions are never computed (an index task's response is a few
    tokens of a ~150-token row).
    """
    targets = labels[:, 1:]
    predicted = targets != -100
    logits = head(hidden[:, :-1][predicted])  # (N, V)
    return nn.functional.cross_entropy(logits.float(), targets[predicted], reduction=reduction)


class EagerLLM(nn.Module):
    """A causal LM ``lm`` (plain or PEFT) and an optional :class:`GCTHead` ``gct``.

    ``forward`` takes a :class:`~eager_llm.training.collator.ResponseCollator` batch:
    input_ids, attention_mask, labels: (B, T); eos_positions, target_items: LongTensor (B,);
    gct_rows: BoolTensor (B,). It returns a dict of scalars: ``loss``, ``lm_loss`` and, with
    GCT and at least one GCT row in the batch, the unweighted ``gct_sem`` and ``gct_beh``.
    Under data parallelism the batch is the global one (all processes' micro-batches): the
    LM loss is the mean over its labelled tokens, GCT over its rows, and each process
    returns its share of them (:func:`.ranks.share`), so the average over processes, and of
    their gradients, is what one process with the whole batch computes.
    """

    # Trainer's checkpoint loading consults this when the LM's state dict misses keys (a tied
    # LM head is not saved): nothing of EagerLLM is left out on purpose.
    _keys_to_ignore_on_save = None

    def __init__(
        self,
        lm,
        gct: GCTHead | None = None,
        semantic_weight: float = 0.1,
        behaviour_weight: float = 0.1,
    ) -> None:
        super().__init__()
        self.lm = lm
        self.gct = gct
        self.semantic_weight = semantic_weight
        self.behaviour_weight = behaviour_weight

    def activation_checkpointing_enable(self, **kwargs) -> None:
        """Called by ``Trainer`` when ``activation_checkpointing`` is set."""
        self.lm.activation_checkpointing_enable(**kwargs)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        eos_positions: torch.Tensor,
        target_items: torch.Tensor,
        gct_rows: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        decoder, head = decoder_and_head(self.lm)
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        tokens = int(total((labels[:, 1:] != -100).sum()))
        lm_loss = share(labelled_lm_loss(hidden, labels, head, reduction="sum"), tokens)
        if self.gct is None:
            return {"loss": lm_loss, "lm_loss": lm_loss}
        rows = gct_rows.nonzero().squeeze(1)
        sem, beh, n = self.gct(hidden[rows, eos_positions[rows]].float(), target_items[rows])
        # with n == 0 both are a zero that still gives every projector a gradient (DDP's need)
        loss = lm_loss + self.semantic_weight * sem + self.behaviour_weight * beh
        if not n:
            return {"loss": loss, "lm_loss": lm_loss}
        return {"loss": loss, "lm_loss": lm_loss, "gct_sem": sem, "gct_beh": beh}
