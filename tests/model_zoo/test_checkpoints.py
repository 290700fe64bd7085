"""Trainer resume restores LLaVA / Qwen2.5-VL weights saved under their legacy names."""

import pytest
import torch
from transformers import AutoModelForImageTextToText, Trainer, TrainingArguments

from model_zoo import resolve
from model_zoo.checkpoints import RenamedWeightsResume, load_saved_weights
from observe_r1.align import StageTrainer
from observe_r1.training.trainer import ObserveR1Trainer


class ResumingTrainer(RenamedWeightsResume, Trainer):
    pass


def scrambled_copy(model):
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    return state


ONE_FILE, SHARDED = "50GB", "200KB"


@pytest.mark.parametrize(
    ("name", "shard"),
    [("tiny-llava", ONE_FILE), ("tiny-qwen2.5-vl", ONE_FILE), ("tiny-llava", SHARDED)],
)
def test_trainer_resume_restores_weights_saved_under_legacy_names(name, shard, tmp_path):
    model = AutoModelForImageTextToText.from_pretrained(resolve(name))
    model.save_pretrained(tmp_path / "checkpoint-1", max_shard_size=shard)
    saved = scrambled_copy(model)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    ResumingTrainer(model=model, args=args)._load_from_checkpoint(str(tmp_path / "checkpoint-1"))
    restored = model.state_dict()
    assert all(torch.equal(restored[key], saved[key]) for key in saved)


def test_load_saved_weights_rejects_foreign_checkpoints(tmp_path):
    llava = AutoModelForImageTextToText.from_pretrained(resolve("tiny-llava"))
    llava.save_pretrained(tmp_path)
    qwen = AutoModelForImageTextToText.from_pretrained(resolve("tiny-qwen2.5-vl"))
    with pytest.raises(KeyError, match="weights the model does not have"):
        load_saved_weights(qwen, tmp_path)


def test_project_trainers_use_the_renamed_weights_resume():
    assert issubclass(ObserveR1Trainer, RenamedWeightsResume)
    assert issubclass(StageTrainer, RenamedWeightsResume)
