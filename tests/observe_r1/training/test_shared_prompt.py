"""``share_prompt_forward``: each group's prompt run once gives the stock path's completion
log-probabilities, entropies and gradients (tiny real models), and groups are found right."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoTokenizer,
    Gemma2Config,
    LlamaConfig,
    LlavaConfig,
)
from trl.trainer.utils import add_fused_lm_head

from model_zoo import resolve
from model_zoo.processors import load_processor
from observe_r1.training import shared_prompt
from observe_r1.training.shared_prompt import (
    RowImages,
    add_shared_prompt_forward,
    check_engine,
    check_supported,
    images_per_row,
    prompt_groups,
)
from observe_r1.training.trainer import ObserveR1Trainer
from tests.observe_r1.training.test_distributed import REPO, SCRIPT
from tests.observe_r1.training.test_trainer import TINY, _trainer, config_for, write_rows
from yaml_config import ConfigError

QUESTIONS = ["How many circles are there?", "What colour is the largest square in the image?"]


def batch_of_groups(processor, vision: bool, group: int = 3, completion: int = 7):
    """TRL's layout: two prompts of different lengths (left-padded), ``group`` right-padded
    random completions each -> (input_ids, attention_mask, pixel_values or None, T)."""
    tokenizer = processor.tokenizer if vision else processor
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    content = [{"type": "image"}] if vision else []
    texts = [
        processor.apply_chat_template(
            [{"role": "user", "content": [*content, {"type": "text", "text": q}]}]
            if vision
            else [{"role": "user", "content": q}],
            add_generation_prompt=True,
            tokenize=False,
        )
        for q in QUESTIONS
    ]
    if vision:
        images = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue")]
        inputs = processor(text=texts, images=images, padding=True, return_tensors="pt")
    else:
        inputs = tokenizer(texts, padding=True, return_tensors="pt")
    assert (inputs["attention_mask"] == 0).any(), "the prompts must differ in length"
    generator = torch.Generator().manual_seed(0)
    vocab = len(tokenizer) - 8
    completions = torch.randint(3, vocab, (2 * group, completion), generator=generator)
    completion_mask = torch.ones_like(completions)
    completion_mask[1, 4:] = 0  # right padding, as TRL masks after EOS
    completion_mask[4, 2:] = 0
    input_ids = torch.cat([inputs["input_ids"].repeat_interleave(group, 0), completions], 1)
    mask = torch.cat([inputs["attention_mask"].repeat_interleave(group, 0), completion_mask], 1)
    shuffled = torch.randperm(2 * group, generator=generator)  # TRL shuffles a round's rows
    images = {}
    if vision:  # per image: one entry, or (Qwen-VL) t * h * w patch rows, here equal per image
        pixels = inputs["pixel_values"].view(2, -1, *inputs["pixel_values"].shape[1:])
        images["pixel_values"] = pixels.repeat_interleave(group, 0)[shuffled].flatten(0, 1)
    if "image_grid_thw" in inputs:
        images["image_grid_thw"] = inputs["image_grid_thw"].repeat_interleave(group, 0)[shuffled]
        types = inputs["mm_token_type_ids"].repeat_interleave(group, 0)
        types = torch.cat([types, types.new_zeros(completions.shape)], 1)
        images["mm_token_type_ids"] = types[shuffled]
    return input_ids[shuffled], mask[shuffled], images, completion


def stock_and_shared(name: str, vision: bool, device: str = "cpu"):
    folder = resolve(name)
    loader = AutoModelForImageTextToText if vision else AutoModelForCausalLM
    torch.manual_seed(0)
    model = loader.from_pretrained(folder, dtype=torch.float32).to(device)
    processor = load_processor(folder) if vision else AutoTokenizer.from_pretrained(folder)
    input_ids, mask, extra, keep = batch_of_groups(processor, vision)
    input_ids, mask = input_ids.to(device), mask.to(device)
    extra = {key: value.to(device) for key, value in extra.items()}
    add_fused_lm_head(model, temperature=0.9, outputs=("log_probs", "entropy"))
    add_shared_prompt_forward(model, temperature=0.9)
    labels = input_ids.masked_fill(mask == 0, -100)
    labels[:, :-keep] = -100
    stock = model(
        input_ids=input_ids, attention_mask=mask, labels=labels, fused_lm_head=True, **extra
    )
    stock_logps = stock.log_probs[:, -keep:]
    stock_entropy = stock.entropy[:, -keep:]
    valid = mask[:, -keep:].bool()
    (stock_logps[valid].sum()).backward()
    stock_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    shared = model(
        input_ids=input_ids,
        attention_mask=mask,
        logits_to_keep=keep,
        shared_prompt=True,
        compute_entropy=True,
        **extra,
    )
    (shared.log_probs[valid].sum()).backward()
    shared_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return (
        (stock_logps, stock_entropy, stock_grads),
        (shared.log_probs, shared.entropy, shared_grads),
        valid,
    )


@pytest.mark.parametrize(
    ("name", "vision"),
    [("tiny-llava", True), ("tiny-qwen2.5-vl", True), ("tiny-llama", False), ("tiny-qwen2", False)],
)
def test_shared_prompt_matches_the_stock_forward_in_values_and_gradients(
    name, vision, compute_device
):
    """On the CPU, or on a GPU with ``OBSERVE_EAGER_TEST_DEVICE=cuda`` (the GPU check)."""
    stock, shared, valid = stock_and_shared(name, vision, compute_device)
    (logps, entropy, grads), (s_logps, s_entropy, s_grads) = stock, shared
    assert s_logps.shape == logps.shape
    torch.testing.assert_close(s_logps[valid], logps[valid], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(s_entropy[valid], entropy[valid], rtol=1e-4, atol=1e-4)
    assert (s_logps[~valid] == 0).all()
    assert grads.keys() == s_grads.keys()
    for parameter, grad in grads.items():
        torch.testing.assert_close(s_grads[parameter], grad, rtol=1e-3, atol=1e-5, msg=parameter)
    if vision:  # the image reaches the loss through the one prompt pass
        assert any(
            ("vision" in n or "visual" in n) and g.abs().sum() > 0 for n, g in s_grads.items()
        )


def test_groups_are_the_rows_of_one_prompt_and_image_wherever_they_lie():
    ids = torch.tensor([[0, 5, 6], [7, 5, 6], [0, 5, 6], [7, 5, 6], [7, 5, 6]])
    mask = torch.tensor([[0, 1, 1], [1, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]])
    images = [RowImages(torch.full((1, 2), value)) for value in (0.0, 1.0, 0.0, 0.0, 1.0)]
    assert prompt_groups(ids, mask, images) == [[0, 2], [1, 4], [3]]  # row 3: same text, new image
    patches = torch.zeros(8, 2)  # Qwen-VL: the same patch rows under another (t, h, w) grid
    grids = [torch.tensor([[1, 2, 4]]), torch.tensor([[1, 4, 2]]), torch.tensor([[1, 2, 4]])]
    qwen_images = [RowImages(patches, grid) for grid in grids]
    assert prompt_groups(ids[[0, 0, 0]], mask[[0, 0, 0]], qwen_images) == [[0, 2], [1]]


def test_images_per_row_splits_qwen_patch_rows_by_image_grid():
    grid = torch.tensor([[1, 2, 2], [1, 2, 4], [1, 2, 2]])  # 4, 8 and 4 patch rows
    pixels = torch.arange(16.0).unsqueeze(1)
    rows = images_per_row(pixels, [1, 0, 2], 3, grid)
    assert [r.pixels.flatten().tolist() for r in rows] == [
        [0.0, 1.0, 2.0, 3.0],
        [],
        list(map(float, range(4, 16))),
    ]
    assert [r.grid.tolist() for r in rows] == [[[1, 2, 2]], [], [[1, 2, 4], [1, 2, 2]]]
    assert rows[1].inputs() == {} and set(rows[2].inputs()) == {"pixel_values", "image_grid_thw"}


def test_untested_text_models_and_dropout_are_refused():
    soft_capped = LlavaConfig(text_config=Gemma2Config(hidden_size=16, num_hidden_layers=1))
    with pytest.raises(ConfigError, match="gemma2"):  # the outer type alone passes
        check_supported(soft_capped)
    with pytest.raises(ConfigError, match="dropout"):
        check_supported(LlamaConfig(attention_dropout=0.1))
    check_supported(LlavaConfig(text_config=LlamaConfig()))


def test_deepspeed_zero3_is_refused_and_zero2_taken():
    with pytest.raises(ConfigError, match="ZeRO-3"):
        check_engine(3)
    check_engine(2)
    check_engine(None)


# Two fp32 paths that sum the same terms in another order agree to a few ulps of the
# terms' scale per addition level; 1e-3 of a gradient tensor's largest entry leaves ~100x
# margin for the tiny models' reductions (<= ~10^4 terms, sqrt(n) * 2^-24 ~ 1e-5). A gradient
# that is 0 in exact arithmetic (attention key biases) is pure rounding noise of the terms
# that cancel in it: one fp32 ulp of the model's largest gradient bounds that floor.
GRADIENT_RTOL = 1e-3


def gradient_tolerance(grad, largest):
    """How far two summation orders may move ``grad``: ``GRADIENT_RTOL`` of its largest
    entry, plus one fp32 ulp of ``largest`` (the model's largest gradient entry)."""
    return GRADIENT_RTOL * grad.abs().max().item() + torch.finfo(torch.float32).eps * largest


def first_adam_step_bound(grad, grad_tolerance, lr, eps):
    """Largest difference of two first AdamW steps (no weight decay) whose gradients lie
    within ``grad_tolerance`` of ``grad``: the step is ``lr * g / (|g| + eps)`` (bias
    correction cancels), whose slope ``eps / (|g| + eps)^2`` is steepest at the smallest
    ``|g|`` in reach; never more than ``2 * lr`` (the step's range)."""
    nearest = (grad.abs() - grad_tolerance).clamp(min=0)
    return (lr * grad_tolerance * eps / (nearest + eps) ** 2).clamp(max=2 * lr)


def first_step_gradients(trainer):
    """Each parameter's (clipped) gradient of a one-step run, read back from AdamW's first
    moment (``exp_avg = (1 - beta1) * g`` after step 1)."""
    beta1 = trainer.args.adam_beta1
    return {
        name: trainer.optimizer.state[p]["exp_avg"] / (1 - beta1)
        for name, p in trainer.model.named_parameters()
        if p in trainer.optimizer.state
    }


ADAM_EPS = 1e-8  # the Trainer's default adam_epsilon


def assert_same_first_step(grads, other_grads, weights, other_weights, *, lr, eps=ADAM_EPS):
    """Two runs of one AdamW step: gradients within `gradient_tolerance`, weights within
    `first_adam_step_bound` of it (plus the rounding of ``w - step``)."""
    assert grads.keys() == other_grads.keys() and grads
    largest = max(grad.abs().max().item() for grad in grads.values())
    for name, grad in grads.items():
        tolerance = gradient_tolerance(grad, largest)
        torch.testing.assert_close(other_grads[name], grad, rtol=0, atol=tolerance, msg=name)
        bound = first_adam_step_bound(grad, tolerance, lr, eps)
        ulp = (weights[name].abs() + lr) * torch.finfo(torch.float32).eps
        gap = (other_weights[name] - weights[name]).abs()
        assert (gap <= bound + 2 * ulp).all(), (name, (gap - bound - 2 * ulp).max().item())


@pytest.mark.parametrize("model", ["tiny-llava", "tiny-qwen2.5-vl"])
def test_a_training_step_with_a_shared_prompt_moves_the_weights_as_the_stock_one(
    tmp_path, monkeypatch, model
):
    """Same seed, so the same rollouts; beta 0.01 sends the reference through the path too.
    The claim is about gradients: they agree to fp32 summation noise, and the weights to
    what one AdamW step makes of that noise (large where a gradient is near 0, where the
    step is ``lr * g / (|g| + eps)``): no tolerance tied to one CPU's kernels."""
    calls = []
    taken = shared_prompt.completion_log_probs
    monkeypatch.setattr(
        shared_prompt, "completion_log_probs", lambda *a, **k: calls.append(1) or taken(*a, **k)
    )
    after, grads = {}, {}
    for shared in (False, True):
        config = config_for(
            tmp_path / str(shared),
            model=model,
            max_steps=1,
            max_completion_length=16,
            learning_rate=1e-3,
            share_prompt_forward=shared,
            gradient_checkpointing=False,
            save_strategy="'no'",
        )
        trainer = _trainer(config, ObserveR1Trainer)
        assert trainer.args.weight_decay == 0
        before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        trainer.train()
        after[shared] = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        grads[shared] = first_step_gradients(trainer)
        assert bool(calls) == shared  # the policy's and the reference's forward
    moved = [n for n in before if not torch.equal(after[False][n], before[n])]
    assert len(moved) > 0.5 * len(before)
    assert grads[True].keys() == grads[False].keys() and grads[False]
    assert trainer.args.adam_epsilon == ADAM_EPS
    assert_same_first_step(grads[False], grads[True], after[False], after[True], lr=1e-3)
    for name in before.keys() - grads[False].keys():  # no gradient: untouched in both runs
        assert torch.equal(after[True][name], after[False][name]), name


def test_gradient_checkpointing_is_refused_with_a_shared_prompt(tmp_path):
    with pytest.raises(ConfigError, match="gradient checkpointing"):
        config_for(tmp_path, share_prompt_forward=True, gradient_checkpointing=True)


def test_two_processes_train_through_the_wrapper_as_with_the_stock_forward(tmp_path):
    """torchrun, 2 CPU processes (DDP, gloo): the shared path goes through DDP's forward, so
    gradients are all-reduced; both ranks end with the stock run's weights."""
    data = write_rows(tmp_path, n=4)
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    trained, grads = {}, {}
    for shared in (False, True):
        out = tmp_path / f"run-{shared}"
        command = [
            torchrun, "--nproc_per_node", "2", str(SCRIPT), str(TINY), f"train_file={data}",
            f"output_dir={out}", "model=tiny-llava", "max_steps=1", "max_completion_length=16",
            "learning_rate=1e-3", "gradient_checkpointing=false",
            f"share_prompt_forward={str(shared).lower()}",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        trained[shared] = [torch.load(out / f"trained-{rank}.pt") for rank in (0, 1)]
        grads[shared] = torch.load(out / "grads-0.pt")
    stock, shared_runs = trained[False], trained[True]
    for name, tensor in stock[0].items():
        torch.testing.assert_close(stock[1][name], tensor, rtol=0, atol=0)  # DDP: ranks equal
        torch.testing.assert_close(shared_runs[1][name], shared_runs[0][name], rtol=0, atol=0)
    # the all-reduced gradients agree to fp32 summation noise, the weights to what AdamW's
    # first step makes of it (a rank that missed the all-reduce is a whole gradient away)
    assert_same_first_step(grads[False], grads[True], stock[0], shared_runs[0], lr=1e-3)
