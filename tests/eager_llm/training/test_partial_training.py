"""``train_layers``: stage 1 trains the top decoder layers and the embeddings only."""

import pytest
import torch
from transformers import AutoConfig, LlamaForCausalLM

from eager_llm.training import ConfigError, load_config
from eager_llm.training.model import train_top_layers
from model_zoo import resolve


def tied_llama(layers: int = 3) -> LlamaForCausalLM:
    config = AutoConfig.from_pretrained(
        resolve("tiny-llama"), tie_word_embeddings=True, num_hidden_layers=layers
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def loss_and_grads(lm) -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
    ids = torch.randint(0, lm.config.vocab_size, (2, 7), generator=torch.Generator().manual_seed(1))
    loss = lm(input_ids=ids, labels=ids).loss
    loss.backward()
    return loss.detach(), {name: p.grad for name, p in lm.named_parameters()}


def test_only_the_top_layers_and_the_tied_embeddings_get_gradients():
    full, partial = tied_llama(), tied_llama()
    train_top_layers(partial, 1)
    full_loss, full_grads = loss_and_grads(full)
    partial_loss, grads = loss_and_grads(partial)
    assert torch.equal(full_loss, partial_loss)  # the forward is unchanged
    for name, grad in grads.items():
        if name.startswith(("model.layers.0.", "model.layers.1.")):
            assert grad is None, name
        else:
            assert grad is not None and grad.abs().sum() > 0, name
    # the top layer's gradient is the full model's; the embeddings' comes from the head alone
    top = "model.layers.2.mlp.down_proj.weight"
    assert torch.allclose(grads[top], full_grads[top], rtol=1e-5, atol=1e-7)
    embeddings = "model.embed_tokens.weight"
    assert not torch.allclose(grads[embeddings], full_grads[embeddings])


def test_as_many_layers_as_the_model_has_is_full_fine_tuning():
    full, every = tied_llama(), tied_llama()
    train_top_layers(every, 3)
    expected, full_grads = loss_and_grads(full)
    loss, grads = loss_and_grads(every)
    assert torch.equal(loss, expected)
    assert all(torch.equal(grads[name], full_grads[name]) for name in full_grads)


def test_config_key_is_stage1_only_and_not_with_lora(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train_layers: 2\noutput_dir: s1\nanneal: {output_dir: s2}\n")
    assert load_config(path).train_layers == 2
    assert load_config(path, "anneal").train_layers is None
    with pytest.raises(ConfigError, match="train_layers is for full fine-tuning"):
        load_config(path, "train", ["lora={r: 4}"])
    with pytest.raises(ConfigError, match="train_layers"):
        load_config(path, "train", ["train_layers=0"])
