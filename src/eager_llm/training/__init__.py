"""EAGER-LLM training: multi-task alignment with GCT (stage 1), annealing adapter (stage 2).

Modules: ``config`` (YAML -> :class:`EagerConfig` per stage), ``index_files`` (index
folder and its dataset), ``gct`` (InfoNCE, negatives, projectors), ``collator`` (samples ->
tensors, loss on the response), ``model`` (LM loading, LoRA, :class:`EagerLLM`),
``trainer`` (:class:`EagerTrainer`), ``run_log`` (metrics.jsonl, loss curve), ``stages``
(one run: config -> files). Samples come from :mod:`eager_llm.tasks`.
"""

from .collator import ResponseCollator
from .config import ConfigError, EagerConfig, load_config
from .gct import GCTHead, gct_infonce, sample_negatives
from .index_files import IndexFiles, load_index, load_indexed_dataset
from .model import EagerLLM, LoraSettings, add_lora, load_lm
from .stages import build_trainer, run, save_final, stage1_final
from .trainer import PROJECTORS, EagerTrainer

__all__ = [
    "PROJECTORS",
    "ConfigError",
    "EagerConfig",
    "EagerLLM",
    "EagerTrainer",
    "GCTHead",
    "IndexFiles",
    "LoraSettings",
    "ResponseCollator",
    "add_lora",
    "build_trainer",
    "gct_infonce",
    "load_config",
    "load_index",
    "load_indexed_dataset",
    "load_lm",
    "run",
    "sample_negatives",
    "save_final",
    "stage1_final",
]
