"""configs/eager_llm/llama-beauty.yaml is the paper's recipe on 8 GPUs, and on 4 with the
accumulation its comment gives: effective batch 128 (per-device batch x accumulation x
processes), 3 epochs at 5e-5, cosine with 1 % warm-up; annealing 1 epoch of seqrec."""

import math
from pathlib import Path

import pytest

from eager_llm.training import load_config

BEAUTY = Path(__file__).parents[2] / "configs" / "eager_llm" / "llama-beauty.yaml"
CPU = ["bf16=false"]  # TrainingArguments refuses bf16 on a CPU-only machine
ACCUMULATION = {8: [], 4: ["gradient_accumulation_steps=8"]}  # the config's comment


def effective_batch(config, processes: int) -> int:
    return config.per_device_train_batch_size * config.gradient_accumulation_steps * processes


@pytest.mark.parametrize("gpus", [8, 4])
@pytest.mark.parametrize("stage", ["train", "anneal"])
def test_the_papers_batch_schedule_and_learning_rate(gpus, stage):
    config = load_config(BEAUTY, stage, [*CPU, *ACCUMULATION[gpus]])
    assert effective_batch(config, gpus) == 128
    assert config.learning_rate == 5e-5 and config.lr_scheduler_type == "cosine"
    assert config.num_train_epochs == (3 if stage == "train" else 1)
    samples = 100_000  # any training set: 1 % of its optimizer steps warm up
    steps = math.ceil(samples / effective_batch(config, gpus)) * config.num_train_epochs
    assert config.get_warmup_steps(steps) == math.ceil(0.01 * steps)


def test_stage1_trains_everything_and_annealing_is_lora_on_seqrec():
    stage1 = load_config(BEAUTY, "train", CPU)
    assert stage1.lora is None and stage1.use_gct and stage1.template == "alpaca"
    assert set(stage1.tasks) == {
        "seqrec", "item2index", "index2item", "fusion_index2title", "fusion_title2index",
        "item_search", "preference_extraction",
    }  # fmt: skip
    anneal = load_config(BEAUTY, "anneal", CPU)
    assert anneal.tasks == ["seqrec"] and not anneal.use_gct
    assert (anneal.lora["r"], anneal.lora["alpha"]) == (8, 32)
    assert anneal.output_dir.endswith("beauty/anneal")
