"""What both tools' trainers guard against: a resume past ``max_steps``, a non-finite
gradient, a checkpoint or record that cannot be written, a bare ``NaN`` in a JSON record
(:func:`json_line`, :func:`append_record`); reading such a log back and cutting it at a
checkpoint's step for a resumed run (:func:`read_records`, :func:`truncate_after`).

:class:`GuardedTrainer` is a mixin for a transformers ``Trainer`` subclass:

- The Trainer checks ``max_steps`` only after a step, so a run resumed from its last
  checkpoint (finished, or killed just after it) trained step ``max_steps + 1``.
  ``_run_epoch`` now trains nothing once the restored step has reached ``max_steps``; and
  a resumed run does not validate its starting point again (``eval_on_start``: the run
  validated it before that checkpoint was written), which added a metrics line.
- A non-finite gradient norm (of the gradients all processes share, so every process stops)
  raises :class:`NonFiniteError` naming the step, before the optimizer step: the weights
  and the checkpoints written so far are those of the last good step.
- A checkpoint that cannot be written (a full disk: torch's writer raises ``RuntimeError``,
  safetensors ``SafetensorError``) raises an ``OSError`` naming its folder
  (:func:`written`, which the runs also wrap around ``final/``); the earlier checkpoints
  are untouched.
"""

from __future__ import annotations

import errno
import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError
from transformers import Trainer
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

# what torch's zip writer (PytorchStreamWriter) says when a write fails
_TORCH_WRITE_FAILED = ("file write failed", "unexpected pos", "PytorchStreamWriter failed")


class NonFiniteError(ArithmeticError):
    """Training met a NaN or infinite gradient."""


@contextmanager
def written(path: str | Path) -> Iterator[None]:
    """Turn a failed write of the file or folder ``path`` into an ``OSError`` naming it."""
    try:
        yield
    except OSError as error:
        raise _write_error(path, error.errno, error.strerror or str(error)) from error
    except (RuntimeError, SafetensorError) as error:
        message = str(error)
        code = re.search(r"\(os error (\d+)\)", message)
        if code is None and not any(sign in message for sign in _TORCH_WRITE_FAILED):
            raise
        number = int(code.group(1)) if code else errno.EIO
        raise _write_error(path, number, message.strip().splitlines()[-1]) from error


def _write_error(path: str | Path, number: int | None, reason: str) -> OSError:
    full = " (is the disk full?)" if number in (errno.EIO, None) else ""
    return OSError(number, f"could not be written: {reason}{full}", str(path))


def append_record(path: str | Path, record: dict) -> None:
    """Append ``record`` to the JSON-lines file ``path`` (:func:`json_line`, :func:`written`)."""
    with written(path), Path(path).open("a") as handle:
        handle.write(json_line(record))


def read_records(path: str | Path) -> list[dict]:
    """The records of a JSON-lines log such as ``metrics.jsonl``, in file order."""
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def truncate_after(path: str | Path, step: int) -> None:
    """Drop the records of steps after ``step`` (a resumed run redoes them); lines kept as
    written. No file: nothing to do."""
    path = Path(path)
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept))


def json_line(record: dict) -> str:
    """``record`` as one JSON line, a NaN or infinity (nested too) as ``null``: JSON has
    neither, and ``json.dumps`` would write a bare ``NaN``."""
    return json.dumps(_finite(record), allow_nan=False) + "\n"


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


_HOOKS = ("train", "_run_epoch", "_get_grad_norm", "_save_checkpoint")
if missing := [name for name in _HOOKS if not hasattr(Trainer, name)]:
    raise RuntimeError(f"transformers' Trainer has no {missing[0]}: port GuardedTrainer")


class GuardedTrainer:
    """Trainer mixin: stop at ``max_steps`` on resume, on a non-finite gradient, and name a
    checkpoint that cannot be written (see the module)."""

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        on_start = self.args.eval_on_start
        self.args.eval_on_start = on_start and not resume_from_checkpoint  # done before
        try:
            return super().train(resume_from_checkpoint, *args, **kwargs)
        finally:
            self.args.eval_on_start = on_start

    def _run_epoch(self, *args, **kwargs):
        if self.state.global_step >= self.state.max_steps:
            self.control.should_training_stop = True
            return
        super()._run_epoch(*args, **kwargs)

    def _get_grad_norm(self, model, grad_norm=None):
        norm = super()._get_grad_norm(model, grad_norm=grad_norm)
        if norm is not None and not math.isfinite(float(norm)):  # None: DeepSpeed's own
            step = self.state.global_step + 1
            raise NonFiniteError(
                f"step {step}: the gradient norm is {float(norm)}: training stopped before this "
                f"step's update; the checkpoints of the steps before it are kept in "
                f"{self.args.output_dir}"
            )
        return norm

    def _save_checkpoint(self, model, trial):
        folder = Path(self._get_output_dir(trial=trial))
        with written(folder / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"):
            super()._save_checkpoint(model, trial)
