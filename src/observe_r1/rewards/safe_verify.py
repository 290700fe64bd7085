"""math-verify with a hard time limit that works from any thread.

math-verify bounds its own work with ``signal.alarm``, which only works in the main thread, and
a model can write answers that keep SymPy busy for hours (``9^{9^{9^{9}}}``). So the comparison
runs in a persistent child process (`observe_r1.rewards.math_worker`), one JSON line per
request; when a request overruns its limit the child is killed (SIGKILL, then reaped) and the
call raises `VerifyTimeout`. A second, already warm child waits as a spare, so a kill costs the
next request nothing; a fresh spare starts in the background. Only a burst of kills faster than
a child starts (about 1 s) can find no ready worker: those requests time out too, so that every
call stays within its limit; the very first start is the one wait allowed to exceed it. Children
are started on first use (or by `start_workers`), killed at interpreter exit, and exit by
themselves when their stdin closes. They run in their own process group, so a Ctrl-C in the
terminal reaches only the parent (which then closes them), and they ignore SIGINT sent to them
directly: no traceback from a worker ever reaches the terminal.

Calls are serialised by a lock; the time limit covers the comparison, not the wait for the lock.
"""

from __future__ import annotations

import atexit
import json
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

STARTUP_TIMEOUT_S = 60.0
VERDICTS = {b"1\n": True, b"0\n": False, b"?\n": None}


class VerifyTimeout(Exception):
    """No verdict in time: the comparison overran (or crashed) or no worker was ready yet."""


@dataclass
class VerifyStats:
    """Running counts for the trainer's logs."""

    requests: int = 0  # comparisons sent to a worker (cache misses)
    timeouts: int = 0  # of which overran the time limit: worker killed, scored 0
    crashes: int = 0  # of which the worker died by itself: scored 0
    oversized: int = 0  # answers refused before any parsing for being too long, scored 0


stats = VerifyStats()


class _Worker:
    """One ``python -m observe_r1.rewards.math_worker`` child and its pipes."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "observe_r1.rewards.math_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            process_group=0,  # out of the terminal's group: Ctrl-C interrupts the parent only
        )
        self.ready = False
        self._poller = select.poll()  # not select.select: trainers may hold fds above 1024
        self._poller.register(self.process.stdout, select.POLLIN)

    def read_line(self, timeout_s: float) -> bytes | None:
        """The next line the child writes; b"" if it died, None if nothing came in `timeout_s`."""
        readable = self._poller.poll(max(timeout_s, 0.0) * 1000)
        return self.process.stdout.readline() if readable else None

    def wait_ready(self, timeout_s: float) -> bool:
        """Whether the child has finished its imports, waiting up to `timeout_s` for them."""
        if not self.ready:
            line = self.read_line(timeout_s)
            if line is None:
                return False
            if line != b"ready\n":
                raise RuntimeError(
                    "observe_r1.rewards.math_worker died while starting; see its stderr"
                )
            self.ready = True
        return True

    def ask(self, gold: str, answer: str, timeout_s: float) -> bytes | None:
        """Send one request to the ready child; its verdict line, as `read_line` returns it."""
        try:
            self.process.stdin.write(json.dumps([gold, answer]).encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            return b""
        return self.read_line(timeout_s)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self.process.stdin.close()
        self.process.stdout.close()


class _WorkerPair:
    """An active worker plus a spare, started in advance, that replaces it when it is killed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._started = False

    def _fill(self) -> None:
        while len(self._workers) < 2:
            self._workers.append(_Worker())

    def start(self) -> None:
        with self._lock:
            self._fill()

    def compare(self, gold: str, answer: str, timeout_s: float) -> bool | None:
        with self._lock:
            self._fill()
            active = self._workers[0]
            if not self._started:  # only the very first start may exceed a request's limit
                if not active.wait_ready(STARTUP_TIMEOUT_S):
                    raise RuntimeError(
                        f"observe_r1.rewards.math_worker not ready in {STARTUP_TIMEOUT_S}s"
                    )
                self._started = True
            deadline = time.monotonic() + timeout_s
            if not active.wait_ready(timeout_s):  # a replacement still starting: a burst of kills
                stats.timeouts += 1
                raise VerifyTimeout(f"no worker ready within {timeout_s}s")
            stats.requests += 1
            reply = active.ask(gold, answer, deadline - time.monotonic())
            if reply in VERDICTS:
                return VERDICTS[reply]
            self._workers.pop(0).stop()
            self._fill()
            if reply is None:
                stats.timeouts += 1
            else:
                stats.crashes += 1
            raise VerifyTimeout(f"no verdict within {timeout_s}s for answer {answer[:80]!r}")

    def close(self) -> None:
        with self._lock:
            while self._workers:
                self._workers.pop().stop()


_workers = _WorkerPair()
atexit.register(_workers.close)


def start_workers() -> None:
    """Start the worker processes now (non-blocking), so the first comparison finds them warm."""
    _workers.start()


@lru_cache(maxsize=1 << 14)
def math_equal(gold: str, answer: str, timeout_s: float) -> bool | None:
    """Whether math-verify finds `answer` equal to `gold`; None if it cannot read the gold as math.

    Raises `VerifyTimeout` (never cached) if the worker takes longer than `timeout_s` seconds.
    Both strings are read as LaTeX, wrapped in ``$...$`` unless they already contain a ``$``.
    """
    return _workers.compare(gold, answer, timeout_s)
