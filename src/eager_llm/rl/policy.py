"""The module stage 3 optimises: the policy LM and its GRPO loss on scored beams.

The policy is a LoRA adapter (with the index-token rows, :func:`eager_llm.training.model.
add_lora`) on the merged stage-2 model; the reference policy of the KL term is that same
model with the adapter disabled, so no second copy of the weights is held. The whole loss
is computed in ``forward`` so that data parallelism (which synchronises gradients through
the wrapped module's forward) sees it, as :class:`eager_llm.training.model.EagerLLM` does.
"""

from __future__ import annotations

import torch
from torch import nn

from eager_llm.training.model import decoder_and_head
from eager_llm.training.ranks import share, total
from model_zoo.grpo import clipped_surrogate, k3_kl


def completion_log_probs(lm, input_ids, attention_mask, labels) -> torch.Tensor:
    """Log-probabilities of the labelled tokens under ``lm``: FloatTensor (N,), in row-major
    order of the positions where ``labels[:, 1:] != -100`` (full-vocabulary softmax).

    input_ids, attention_mask, labels: (B, T), ``labels`` -100 where no token is scored."""
    decoder, head = decoder_and_head(lm)
    hidden = decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    targets = labels[:, 1:]
    predicted = targets != -100
    logits = head(hidden[:, :-1][predicted]).float()  # (N, V)
    return torch.log_softmax(logits, dim=-1).gather(1, targets[predicted][:, None])[:, 0]


class GRPOPolicy(nn.Module):
    """A PEFT causal LM ``lm`` trained by GRPO; ``gct`` is always None (for the
    checkpointing and validation of :class:`eager_llm.training.trainer.EagerTrainer`).

    ``forward`` takes the G sequences of each example (prompt + item index + EOS) as
    input_ids, attention_mask, labels: (B, T), labels -100 outside the item's tokens; and
    advantages: (B,). Per token: ``clipped_surrogate(epsilon) + beta * k3_kl`` to the
    adapter-free model; per sequence the mean over its tokens; the loss is the mean over
    the sequences of the global batch (each process returns its :func:`share`). Returns
    ``loss`` and the mean per-token ``kl`` of this process's sequences.
    """

    _keys_to_ignore_on_save = None  # see EagerLLM

    def __init__(self, lm, beta: float = 0.04, epsilon: float = 0.2) -> None:
        super().__init__()
        self.lm = lm
        self.gct = None
        self.beta = beta
        self.epsilon = epsilon

    def activation_checkpointing_enable(self, **kwargs) -> None:
        self.lm.activation_checkpointing_enable(**kwargs)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        advantages: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        logps = completion_log_probs(self.lm, input_ids, attention_mask, labels)
        rows = (labels[:, 1:] != -100).nonzero()[:, 0]  # each token's sequence, (N,)
        # one update per generation: the sampling policy is the current one (ratio 1)
        per_token = clipped_surrogate(logps, logps.detach(), advantages[rows], self.epsilon)
        kl = torch.zeros_like(logps)
        if self.beta > 0:
            with torch.no_grad(), self.lm.disable_adapter():
                ref_logps = completion_log_probs(self.lm, input_ids, attention_mask, labels)
            kl = k3_kl(logps, ref_logps)
            per_token = per_token + self.beta * kl
        n_rows = len(input_ids)
        tokens = torch.zeros(n_rows, device=logps.device).index_add_(
            0, rows, torch.ones_like(logps)
        )
        per_sequence = torch.zeros(n_rows, device=logps.device).index_add_(0, rows, per_token)
        per_sequence = per_sequence / tokens.clamp(min=1)
        loss = share(per_sequence.sum(), int(total(torch.tensor(n_rows, device=logps.device))))
        return {"loss": loss, "kl": kl.detach().mean()}
