"""Ranking under several seqrec instructions, as LC-Rec reports it (mean, min and max).

Training draws each ``seqrec`` sample's instruction from a pool (``prompts/tasks.json``),
so a trained model has seen all of them; inference uses the first unless told otherwise
(:func:`eager_llm.tasks.recommendation_prompt`). Evaluating under each instruction of the
pool and reporting the spread shows how much a number depends on the wording.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from eager_llm.tasks import prompt_pools


def seqrec_instructions() -> list[str]:
    """The seqrec pool, each with a ``{history}`` placeholder; position = instruction id."""
    return prompt_pools()["seqrec"]


def parse_instructions(text: str) -> tuple[int, ...]:
    """``"all"`` -> every instruction id; ``"0,2"`` -> (0, 2). Raises ``ValueError`` naming
    ``--instructions`` for anything else (an unknown id, a repeat, an empty list)."""
    count = len(seqrec_instructions())
    if text.strip() == "all":
        return tuple(range(count))
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts):
        raise ValueError(f"--instructions {text!r}: give 'all' or ids separated by commas")
    ids = tuple(int(part) for part in parts)
    if bad := [i for i in ids if i >= count]:
        raise ValueError(
            f"--instructions {text!r}: no instruction {bad[0]} (the seqrec pool has {count}: "
            f"0 to {count - 1})"
        )
    if len(set(ids)) != len(ids):
        raise ValueError(f"--instructions {text!r}: an instruction is given twice")
    return ids


def spread(rows: Sequence[Mapping[str, float]], keys: Sequence[str]) -> dict[str, dict]:
    """``{"mean": {key: ...}, "min": {...}, "max": {...}}`` of ``keys`` over ``rows`` (one
    row of metrics per instruction)."""
    values = {key: np.array([row[key] for row in rows], dtype=np.float64) for key in keys}
    return {
        name: {key: float(getattr(array, name)()) for key, array in values.items()}
        for name in ("mean", "min", "max")
    }
