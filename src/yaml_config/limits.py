"""Caps on the sizes a user types, in a config or as an option of either tool.

A size far beyond any real run (``--k 100000000``, ``max_steps: 1e20``, a LoRA rank of a
billion, a seed past NumPy's 2^32 - 1) would allocate without bound, train without end or
fail deep inside a library after the run folder was prepared; each is refused up front
with an error naming the cap. The caps are listed in docs/configs.md#caps.
"""

from __future__ import annotations

import math

__all__ = [
    "MAX_BATCH",
    "MAX_BEAMS",
    "MAX_EPOCHS",
    "MAX_LORA_RANK",
    "MAX_PIXELS",
    "MAX_ROWS",
    "MAX_SAMPLES",
    "MAX_SEED",
    "MAX_STEPS",
    "MAX_TEMPERATURE",
    "MAX_TOKENS",
    "MAX_WIDTH",
    "SizeError",
    "check_size",
]

MAX_SEED = 2**32 - 1  # NumPy's and torch's seed range
MAX_STEPS = 10**7  # optimizer steps (max_steps, --steps, ...)
MAX_EPOCHS = 10_000
MAX_BATCH = 65_536  # a batch size, gradient accumulation, generations per prompt
MAX_LORA_RANK = 4_096
MAX_TOKENS = 131_072  # a sequence or completion length
MAX_TEMPERATURE = 100.0  # sampling temperature (beyond it sampling is uniform anyway)
MAX_SAMPLES = 1_024  # sampled responses per row (eval --samples, ladder --rollouts)
MAX_BEAMS = 1_000  # items ranked per user (recommend --k, eval --beams)
MAX_ROWS = 10_000_000  # rows or users a verb generates or reads in one go (synth --n)
MAX_WIDTH = 65_536  # a model width, layer or head count, clusters per index level
MAX_PIXELS = 10**8  # pixels of one image after resizing (Qwen-VL's own maximum: 1.3e7)


class SizeError(ValueError):
    """A size option beyond its range; the message names the option and the cap."""


def check_size(option: str, value: float | None, cap: float, low: float = 1) -> None:
    """Raise :class:`SizeError` unless ``value`` (None: not given) is finite and within
    ``[low, cap]``."""
    if value is None:
        return
    if not math.isfinite(value) or value < low:
        raise SizeError(f"{option}: must be at least {low:g}, got {value}")
    if value > cap:
        shown = f"{cap:,}" if float(cap).is_integer() else f"{cap:g}"
        raise SizeError(f"{option}: {value} is over the cap of {shown}")
