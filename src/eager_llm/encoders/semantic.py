"""Semantic encoder: sentence embeddings of each item's text.

The text of an item is ``"<title>. Categories: <c1>, <c2>. <description>"`` (empty parts left
out). Any sentence-transformers model works, named as in the model zoo (default
``minilm-l6-v2``, all-MiniLM-L6-v2, 384-d) or by a local folder / hub id passed through
:func:`model_zoo.resolve`; a plain Hugging Face encoder gets sentence-transformers' default
mean pooling. Identical texts are encoded once, so they get bit-identical embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eager_llm.data import ItemCatalog, ItemText
from model_zoo import resolve

DEFAULT_MODEL = "minilm-l6-v2"


def item_text(item: ItemText) -> str:
    """The text that is embedded for ``item``: title, categories, description."""
    parts = [item.title.strip()]
    if item.categories:
        parts.append("Categories: " + ", ".join(item.categories))
    if item.description.strip():
        parts.append(item.description.strip())
    return ". ".join(part for part in parts if part)


def item_texts(catalog: ItemCatalog, item_ids: Sequence[str]) -> list[str]:
    """:func:`item_text` of each of ``item_ids``; raises ``ValueError`` on an empty text."""
    texts = [item_text(catalog[item_id]) for item_id in item_ids]
    if empty := [item_id for item_id, text in zip(item_ids, texts, strict=True) if not text]:
        shown = ", ".join(map(repr, empty[:5])) + (", ..." if len(empty) > 5 else "")
        raise ValueError(f"{len(empty)} items have no text to embed ({shown})")
    return texts


def encode_texts(
    texts: Sequence[str],
    model: str = DEFAULT_MODEL,
    *,
    batch_size: int = 128,
    normalize: bool = True,
    device: str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """(len(texts), d) float32 embeddings, L2-normalised unless ``normalize`` is False.
    ``device`` None picks the accelerator when there is one."""
    from sentence_transformers import SentenceTransformer

    unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    encoder = SentenceTransformer(resolve(model), device=device)
    embeddings = encoder.encode(
        list(unique),
        batch_size=batch_size,
        normalize_embeddings=normalize,
        convert_to_numpy=True,
        show_progress_bar=progress,
    )
    return embeddings.astype(np.float32)[inverse.reshape(-1)]
