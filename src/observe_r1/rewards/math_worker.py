"""The child process behind `observe_r1.rewards.safe_verify`: math-verify behind a pipe.

Protocol, one line each way: after importing, the worker writes ``ready``; then for every
request line ``["<gold>", "<answer>"]`` (JSON) it writes one verdict line:

- ``1`` / ``0``: math-verify says the answer equals / differs from the gold;
- ``?``: math-verify cannot read the gold as mathematics (the caller decides instead).

The parent enforces the time limit by killing this process; math-verify's own signal-based
timeouts are disabled. Two local guards bound the damage if the parent is gone: an address-space
cap turns memory bombs into `MemoryError`, and a SIGALRM left at its default action terminates a
request that runs for longer than `ORPHAN_LIMIT_S`. SIGINT is ignored (from the first line on):
the parent decides when a worker ends, by closing its stdin or killing it.
"""

from __future__ import annotations

import signal

if __name__ == "__main__":  # the parent handles Ctrl-C; ignored from before the heavy imports
    signal.signal(signal.SIGINT, signal.SIG_IGN)

import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from functools import lru_cache  # noqa: E402

from math_verify import parse, verify  # noqa: E402

MEMORY_LIMIT_BYTES = 4 << 30
ORPHAN_LIMIT_S = 60  # far above any sensible per-request limit


def as_latex(text: str) -> str:
    """Wrap a bare answer in ``$...$`` so math-verify reads it as LaTeX (``2\\pi`` is not ``2``)."""
    return text if "$" in text else f"${text}$"


def parse_math(text: str) -> list:
    """math-verify's readings of `text` as SymPy objects (its raw-string fallbacks dropped)."""
    return [
        item for item in parse(as_latex(text), parsing_timeout=None) if not isinstance(item, str)
    ]


parse_gold = lru_cache(maxsize=1 << 14)(parse_math)


def judge(gold: str, answer: str) -> str:
    """The verdict line for one request: ``1``, ``0`` or ``?`` (see the module docstring)."""
    gold_math = parse_gold(gold)
    if not gold_math:
        return "?"
    return "1" if verify(gold_math, parse_math(answer), timeout_seconds=None) else "0"


def serve() -> None:
    """Answer requests from stdin until it closes."""
    logging.disable(logging.WARNING)  # math-verify warns that its timeouts are off: deliberate
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = MEMORY_LIMIT_BYTES if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT_BYTES, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    judge("\\frac{1}{2}", "0.5")  # pay math-verify's first-call costs before declaring ready
    print("ready", flush=True)
    for line in sys.stdin:
        signal.alarm(ORPHAN_LIMIT_S)
        try:
            verdict = judge(*json.loads(line))
        except Exception:  # MemoryError, RecursionError, SymPy internals: not equal
            verdict = "0"
        signal.alarm(0)
        print(verdict, flush=True)


if __name__ == "__main__":
    serve()
