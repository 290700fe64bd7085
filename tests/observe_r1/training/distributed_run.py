"""Run under torchrun by test_distributed.py: one shaped GRPO step, then each rank writes
the advantages it trained with to ``<output_dir>/used-<rank>.json``, its trained weights
to ``trained-<rank>.pt`` and the step's gradients (from AdamW's first moment) to
``grads-<rank>.pt``; then the final model is saved through ``save_final`` (all ranks).
``OBSERVE_R1_JUDGE=ladder``: judge with test_dynamic_sampling's ``ladder_judge``."""

import json
import os
import sys
from pathlib import Path

import torch

from observe_r1.training.config import load_config
from observe_r1.training.train import save_final
from tests.observe_r1.training.test_trainer import RecordingObserveR1, _trainer

config = load_config(sys.argv[1], sys.argv[2:])
trainer = _trainer(config, RecordingObserveR1)
if os.environ.get("OBSERVE_R1_JUDGE") == "ladder":
    from tests.observe_r1.training.test_dynamic_sampling import ladder_judge

    trainer.reward_funcs[-1] = ladder_judge
trainer.train()
rank = trainer.accelerator.process_index
out = Path(config.output_dir)
used = [step.tolist() for step in trainer.used_advantages]
(out / f"used-{rank}.json").write_text(json.dumps(used))
model = trainer.accelerator.unwrap_model(trainer.model)
weights = model.state_dict()
torch.save(
    {name: tensor.detach().cpu() for name, tensor in weights.items()}, out / f"trained-{rank}.pt"
)
moments = {
    name: trainer.optimizer.state[p]["exp_avg"] / (1 - trainer.args.adam_beta1)
    for name, p in model.named_parameters()
    if p in trainer.optimizer.state
}
torch.save(moments, out / f"grads-{rank}.pt")
save_final(trainer, out / "final")
