"""Run folders of both trainers: one run per folder, resumed only as itself.

A run folder (``output_dir``) holds one training run: ``checkpoint-N/``, ``final/``, its
records (``metrics.jsonl``, ...) and :data:`FINGERPRINT`, written when the run starts: its
config (every ``TrainingArguments``-style key but the bookkeeping ones of
:data:`IGNORED_KEYS`, e.g. ``max_steps``, which a resume may raise) and the SHA-256 of its
data files. :func:`plan_run` decides, reading the folder only, what a new start does:

- the folder holds no run: start;
- it holds one and neither ``resume`` nor ``overwrite`` is set: refuse (:class:`RunFolderError`);
- ``resume``: the stored fingerprint must equal the new one (else refuse, naming the first
  differing key); continue from the newest *complete* checkpoint (:func:`checkpoint_problem`:
  one a kill or a full disk left half-written is renamed ``incomplete-checkpoint-N``, which
  the Trainer never reads, with a note);
- ``overwrite``: remove the old run's files (only those a run writes), then start.

Callers validate their inputs first, then :func:`plan_run`, then :func:`apply_plan` on the
main process: nothing in the folder changes before the new run is known to be sound. What no
check foresees (a model that does not load, a first step that fails) is undone by
:func:`undone_on_failure`: a new run that fails before its first checkpoint leaves no
fingerprint or records behind, so the corrected rerun into the folder is accepted.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import struct
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_zoo.cache import file_sha256
from model_zoo.outputs import writable_problem

__all__ = [
    "FINGERPRINT",
    "IGNORED_KEYS",
    "Plan",
    "RunFolderError",
    "apply_plan",
    "checkpoint_problem",
    "config_fingerprint",
    "describe_difference",
    "plan_run",
    "run_files",
    "undone_on_failure",
]

FINGERPRINT = "run_fingerprint.json"
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
ASIDE = ".replaced-"  # prefix of the hidden folder an overwrite moves the old run into
INCOMPLETE = "incomplete-"  # prefix of a half-written checkpoint set aside

# Keys a continued run may change: where and how often it logs and saves, how long it runs.
IGNORED_KEYS = frozenset(
    {
        "output_dir",
        "logging_dir",
        "run_name",
        "max_steps",
        "num_train_epochs",
        "save_steps",
        "save_strategy",
        "save_total_limit",
        "save_on_each_node",
        "logging_steps",
        "eval_steps",
        "per_device_eval_batch_size",
        "logging_strategy",
        "logging_first_step",
        "report_to",
        "disable_tqdm",
        "resume_from_checkpoint",
        "overwrite_output_dir",
        "local_rank",
        "dataloader_num_workers",
        "dataloader_persistent_workers",
        "dataloader_prefetch_factor",
        "dataloader_pin_memory",
        "hub_token",
        "push_to_hub",
        "log_level",
        "log_level_replica",
        "log_on_each_node",
    }
)


class RunFolderError(ValueError):
    """A run folder cannot be used as asked; the message is ``folder: what``."""


def _plain(value: Any) -> Any:
    """``value`` as JSON would give it back (tuples as lists, NaN as a string, objects as
    their ``str``), so that a stored fingerprint compares equal to a fresh one."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def config_fingerprint(
    system: str,
    settings: Mapping[str, Any],
    data: Mapping[str, str | Path | Sequence[str | Path]],
    content_keys: Iterable[str] = (),
) -> dict[str, Any]:
    """The fingerprint of a run: ``settings`` (a config's ``to_dict()``) without
    :data:`IGNORED_KEYS` and without ``content_keys`` (paths whose content counts, not the
    name: they are in ``data``), and for each entry of ``data`` the SHA-256 of its file, or
    of each file of a list or of a folder's regular files (by name)."""
    dropped = IGNORED_KEYS | set(content_keys)
    config = {key: _plain(value) for key, value in settings.items() if key not in dropped}
    return {"system": system, "config": config, "data": {k: _digest(v) for k, v in data.items()}}


def _digest(source: str | Path | Sequence[str | Path]) -> dict[str, str] | str:
    if isinstance(source, str | Path):
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file())
            return {p.name: file_sha256(p) for p in files}
        return file_sha256(path)
    return {Path(p).name: file_sha256(p) for p in source}


def describe_difference(stored: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """The first difference between two fingerprints, in words (None: they match). Config
    keys only one of them has (a field added or dropped by an upgrade) are not compared."""
    if stored.get("system") != current.get("system"):
        return f"it holds a {stored.get('system')} run, not a {current.get('system')} one"
    old, new = stored.get("config", {}), current.get("config", {})
    for key in sorted(set(old) & set(new)):  # a key only one side knows: another version
        if old[key] != new[key]:
            return (
                f"config key '{key}' differs: {old[key]!r} when the run started, {new[key]!r} now"
            )
    old, new = stored.get("data", {}), current.get("data", {})
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            return f"the content of '{key}' differs from the file(s) the run started with"
    return None


def _safetensors_problem(path: Path) -> str | None:
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return f"{path.name} is truncated"
        (length,) = struct.unpack("<Q", head)
        if length > size - 8:
            return f"{path.name} is truncated"
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            return f"{path.name} has a corrupt header"
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    if 8 + length + max(ends, default=0) > size:
        return f"{path.name} is truncated"
    return None


WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "adapter_model.safetensors",
    "pytorch_model.bin",
)


def checkpoint_problem(folder: str | Path) -> str | None:
    """Why ``checkpoint-N`` folder is incomplete (None: it looks whole). The Trainer writes
    ``trainer_state.json`` last; a checkpoint also needs its weights, every shard of a
    sharded one, whole safetensors files (the header's offsets fit the file), whole
    ``torch.save`` archives (``*.pt``, ``*.pth``, ``*.bin``: zip files with their central
    directory at the end) and JSON files that parse. Cheap: reads headers, not tensors."""
    folder = Path(folder)
    state = folder / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json"
    engine_shards = any(path.is_dir() for path in folder.iterdir())  # DeepSpeed, FSDP
    if not engine_shards and not any((folder / name).is_file() for name in WEIGHTS):
        return "no model weights"
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        if path.suffix == ".json":
            try:
                loaded = json.loads(path.read_text())
            except (ValueError, UnicodeDecodeError):
                return f"{path.name} is not valid JSON (truncated?)"
            if path.name.endswith(".index.json"):
                shards = set(loaded.get("weight_map", {}).values())
                if missing := sorted(s for s in shards if not (folder / s).is_file()):
                    return f"{path.name} lists {missing[0]}, which is missing"
        elif path.suffix == ".safetensors" and (problem := _safetensors_problem(path)):
            return problem
        elif path.suffix in (".pt", ".pth", ".bin") and not zipfile.is_zipfile(path):
            return f"{path.name} is truncated (not a whole torch archive)"
        elif path.suffix == ".tmp":
            return f"{path.name} was being written"
    return None


def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    found = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if path.is_dir() and (match := CHECKPOINT.match(path.name))
    ]
    return sorted(found)


def run_files(folder: Path, records: Sequence[str] = (), derived: Sequence[str] = ()) -> list[Path]:
    """The files and folders of a run in ``folder``: checkpoints (also those set aside as
    incomplete), ``final/``, the fingerprint, ``records`` and ``derived`` (names or glob
    patterns: the system's records such as ``metrics.jsonl``, its plots and reports)."""
    if not folder.is_dir():
        return []
    patterns = ["checkpoint-*", f"{INCOMPLETE}checkpoint-*", "final", FINGERPRINT]
    patterns += [*records, *derived]
    found = {path for pattern in patterns for path in folder.glob(pattern)}
    return sorted(found)


def _leftovers(folder: Path) -> list[Path]:
    """What an interrupted :func:`apply_plan` left: a hidden folder of an overwritten run,
    a half-written fingerprint."""
    if not folder.is_dir():
        return []
    return sorted([*folder.glob(f"{ASIDE}*"), *folder.glob(f"{FINGERPRINT}.tmp")])


@dataclass
class Plan:
    """What :func:`apply_plan` does to a run folder before training.

    ``checkpoint``: resume from it (None: start from step 0); ``remove``: the old run's
    files (overwrite) and leftovers of an interrupted overwrite; ``set_aside``: incomplete
    checkpoints to rename ``incomplete-checkpoint-N``; ``notes``: lines to print;
    ``write_fingerprint``: whether the folder gets the new fingerprint."""

    folder: Path
    fingerprint: dict[str, Any]
    checkpoint: Path | None = None
    remove: list[Path] = field(default_factory=list)
    set_aside: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    write_fingerprint: bool = True

    @property
    def step(self) -> int:
        """The step of ``checkpoint`` (0 without one)."""
        return int(CHECKPOINT.match(self.checkpoint.name).group(1)) if self.checkpoint else 0


def _stored(folder: Path) -> dict[str, Any] | None:
    path = folder / FINGERPRINT
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise RunFolderError(
            f"{path}: not valid JSON: the run's fingerprint is damaged; --overwrite starts a "
            "new run in this folder"
        ) from None
    if not isinstance(stored, dict):
        raise RunFolderError(f"{path}: not a run fingerprint; --overwrite starts a new run")
    return stored


def _check_writable(folder: Path) -> None:
    """Raise unless ``folder`` is a writable folder or can be created in one."""
    if problem := writable_problem(folder, folder=True):
        raise RunFolderError(f"{folder}: {problem}")


def plan_run(
    folder: str | Path,
    fingerprint: dict[str, Any],
    *,
    resume: bool,
    overwrite: bool,
    records: Sequence[str] = (),
    derived: Sequence[str] = (),
) -> Plan:
    """What starting a run of ``fingerprint`` in ``folder`` does (reads the folder only;
    raises :class:`RunFolderError` when it must not start). A folder holds a run when it
    has a checkpoint, ``final/``, the fingerprint or one of ``records`` (names or glob
    patterns, e.g. ``metrics.jsonl``); an overwrite also removes ``derived`` (plots,
    reports, files a run writes before it trains)."""
    folder = Path(folder)
    if resume and overwrite:
        raise RunFolderError(
            f"{folder}: --resume continues the run in the folder, --overwrite replaces it: give one"
        )
    _check_writable(folder)
    plan = Plan(folder, fingerprint, remove=_leftovers(folder))
    existing = run_files(folder, records)
    if overwrite:
        plan.remove += run_files(folder, records, derived)
        if existing:
            plan.notes.append(f"--overwrite: removing the earlier run in {folder}")
        return plan
    if not resume:
        if existing:
            names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in existing[:4])
            more = f" and {len(existing) - 4} more" if len(existing) > 4 else ""
            raise RunFolderError(
                f"{folder}: holds an earlier run ({names}{more}); pass --resume to continue "
                "it, --overwrite to replace it, or choose another output folder"
            )
        return plan
    if not existing:
        plan.notes.append(f"no checkpoint in {folder}: starting from scratch")
        return plan
    stored = _stored(folder)
    if stored is None:
        plan.notes.append(
            f"note: {folder} has no {FINGERPRINT} (a run from before fingerprints): its config "
            "cannot be compared; resuming as asked and storing this run's fingerprint"
        )
    elif difference := describe_difference(stored, fingerprint):
        raise RunFolderError(
            f"{folder}: --resume refused: {difference}; resume with the run's own config and "
            "data, or start a new run (--overwrite or another output folder)"
        )
    else:
        plan.write_fingerprint = False
    for _, checkpoint in reversed(_checkpoints(folder)):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            plan.checkpoint = checkpoint
            break
        plan.set_aside.append(checkpoint)
        plan.notes.append(
            f"note: {checkpoint.name} is incomplete ({problem}), a write that was cut off: "
            f"skipped, renamed {INCOMPLETE}{checkpoint.name} (delete it when you like)"
        )
    if plan.checkpoint is not None:
        plan.notes.append(f"resuming from {plan.checkpoint}")
    else:
        plan.notes.append(f"no complete checkpoint in {folder}: starting from scratch")
    return plan


def apply_plan(plan: Plan, *, echo=print) -> None:
    """Carry out ``plan`` (on the main process only): print its notes, set incomplete
    checkpoints aside, remove what it removes (each moved by a rename into one hidden
    folder, then that folder deleted: a kill in between leaves the hidden folder, which the
    next start removes, never half a checkpoint under its own name), create the folder and
    write the fingerprint (whole, by a rename)."""
    for note in plan.notes:
        echo(note)
    plan.folder.mkdir(parents=True, exist_ok=True)
    for checkpoint in plan.set_aside:
        target = checkpoint.with_name(INCOMPLETE + checkpoint.name)
        number = 1
        while target.exists():
            number += 1
            target = checkpoint.with_name(f"{INCOMPLETE}{checkpoint.name}-{number}")
        checkpoint.rename(target)
    if plan.remove:
        aside = plan.folder / f"{ASIDE}{time.strftime('%Y%m%d-%H%M%S')}-{time.monotonic_ns()}"
        aside.mkdir()
        for path in plan.remove:
            if path.name.startswith(ASIDE):
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.rename(aside / path.name)
        shutil.rmtree(aside)
    if plan.write_fingerprint:
        target = plan.folder / FINGERPRINT
        partial = target.with_name(target.name + ".tmp")
        partial.write_text(json.dumps(plan.fingerprint, indent=1, sort_keys=True) + "\n")
        partial.replace(target)


@contextmanager
def undone_on_failure(
    plan: Plan, records: Sequence[str] = (), *, main: bool = True
) -> Iterator[None]:
    """Around building the trainer and training: when a run that starts from step 0 in a
    folder holding no earlier run fails before it saves its first checkpoint, the main
    process removes the fingerprint and ``records`` it wrote (then the error goes on), so
    the folder holds no run and a corrected rerun is not refused as "an earlier run"."""
    try:
        yield
    except BaseException:
        fresh = plan.write_fingerprint and plan.checkpoint is None and not plan.set_aside
        if main and fresh and not _checkpoints(plan.folder):
            for path in run_files(plan.folder, records):
                if path.is_file():
                    path.unlink(missing_ok=True)
        raise
