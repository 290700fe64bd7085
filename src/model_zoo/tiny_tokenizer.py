"""Small byte-level BPE tokenizers with chat templates, trained in well under a second.

Tiny test models need a real tokenizer (special tokens, chat template, padding) but no
download; these are trained on a fixed corpus, so they are identical on every machine.
:func:`build_tiny_tokenizer` serves tiny-llama and the VLMs, :func:`build_tiny_qwen2_tokenizer`
is transformers' ``Qwen2Tokenizer`` with Qwen2's (and, with ``eos_token=IM_END``, Qwen3's)
conventions.
"""

from __future__ import annotations

import json

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Tokenizer
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

VOCAB_SIZE = 768
ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
QWEN_VISION = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
LLAVA_IMAGE = "<image>"

_CORPUS = [
    "<observe>The image shows 3 red circles and 2 blue squares.</observe>",
    "<think>Count the circles: 1, 2, 3. Then add 4 + 5 = 9.</think><answer>9</answer>",
    "The user has interacted with items in order. Predict the next item the user will like.",
    "What is the area of the triangle? Options: A. 12 B. 15 C. 18 D. 20. Answer: C",
    "0 1 2 3 4 5 6 7 8 9 10 100 3/4 0.5 25% x^2 + y = \\frac{1}{2} sqrt(16)",
    "Toy Story (1995) Animation Children's Comedy Drama Action Thriller Sci-Fi Romance",
    "You are a helpful assistant. Describe the image, reason step by step, then answer.",
]


def _chatml_template(image_markup: str) -> str:
    """ChatML with a default system turn; image parts render as ``image_markup``."""
    return (
        "{% for message in messages %}"
        "{% if loop.first and message['role'] != 'system' %}"
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "{% endif %}"
        "<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for part in message['content'] %}"
        "{% if part['type'] == 'image' %}" + image_markup + "{% elif part['type'] == 'text' %}"
        "{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
        "{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


QWEN_CHAT_TEMPLATE = _chatml_template("<|vision_start|><|image_pad|><|vision_end|>")
LLAVA_CHAT_TEMPLATE = _chatml_template(LLAVA_IMAGE)
CHATML_TEMPLATE = _chatml_template("")  # text only


def _train_bpe(pre_tokenizer, specials: list[str]) -> Tokenizer:
    """A byte-level BPE of ``VOCAB_SIZE`` entries over the corpus, ``specials`` first."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizer
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return bpe


def build_tiny_tokenizer(extra_special: list[str] = ()) -> PreTrainedTokenizerFast:
    """Byte-level BPE (``VOCAB_SIZE`` entries) with ChatML specials + ``extra_special``."""
    specials = [ENDOFTEXT, IM_START, IM_END, *extra_special]
    bpe = _train_bpe(pre_tokenizers.ByteLevel(add_prefix_space=False), specials)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        additional_special_tokens=list(extra_special),
        padding_side="left",
    )


def build_tiny_qwen2_tokenizer(eos_token: str = ENDOFTEXT) -> Qwen2Tokenizer:
    """``Qwen2Tokenizer`` as Qwen2 / Qwen2.5 (base) ship it: Qwen's pre-tokenizer regex then
    byte-level BPE, no BOS and no specials added to a text, EOS = pad = ``<|endoftext|>``,
    no unknown token, ChatML specials, padding on the right (its default). Qwen3's
    post-trained models ship the same tokenizer with ``eos_token="<|im_end|>"``."""
    split = pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated")
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    bpe = _train_bpe(pre_tokenizers.Sequence([split, byte_level]), [ENDOFTEXT, IM_START, IM_END])
    model = json.loads(bpe.to_str())["model"]
    return Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=[tuple(merge) for merge in model["merges"]],
        unk_token=None,
        eos_token=eos_token,
        pad_token=ENDOFTEXT,
        additional_special_tokens=[IM_START, IM_END],
        chat_template=CHATML_TEMPLATE,
    )
