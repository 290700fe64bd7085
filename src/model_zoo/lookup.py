"""Whether a model name can be resolved, checked without loading or building anything."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["model_problem"]


def model_problem(model: str) -> str | None:
    """Why ``model`` names no model (None: it does): a zoo name, a model folder (with a
    ``config.json``) or a Hugging Face id, one in the local cache when the hub is offline
    (``HF_HUB_OFFLINE``), any well-formed ``owner/name`` otherwise."""
    from huggingface_hub import constants, try_to_load_from_cache

    from model_zoo import ZOO

    if model in ZOO:
        return None
    path = Path(model).expanduser()
    if path.exists():
        return None if (path / "config.json").is_file() else "not a model folder (no config.json)"
    try:
        cached = isinstance(try_to_load_from_cache(model, "config.json"), str)
    except ValueError:  # HFValidationError: not a well-formed repo id either
        cached = False
    offline = constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    if cached or ("/" in model and not offline and not model.startswith((".", "/", "~"))):
        return None
    hub = "a cached Hugging Face id (the hub is offline)" if offline else "a Hugging Face id"
    return f"no such model: not a zoo name ({', '.join(ZOO)}), a model folder or {hub}"
