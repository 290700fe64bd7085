"""Run under torchrun by test_distributed.py: one shaped GRPO step, then each rank writes
the advantages it trained with to ``<output_dir>/used-<rank>.json``."""

import json
import sys
from pathlib import Path

from observe_r1.config import load_config
from tests.observe_r1.test_trainer import RecordingObserveR1, _trainer

config = load_config(sys.argv[1], sys.argv[2:])
trainer = _trainer(config, RecordingObserveR1)
trainer.train()
rank = trainer.accelerator.process_index
used = [step.tolist() for step in trainer.used_advantages]
(Path(config.output_dir) / f"used-{rank}.json").write_text(json.dumps(used))
