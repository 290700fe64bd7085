"""The output rule of every verb of both tools that writes files (import, synth, eval,
tiger, index, recommend; train and anneal follow :mod:`model_zoo.run_folder`).

Checked before anything is read at length or written, and writing nothing itself:

- an output that is, or is a folder that contains, one of the verb's inputs is refused
  (``import --input D/rows.jsonl --out D`` would overwrite the rows it reads);
- an output folder that holds what the verb writes (an earlier run's ``rows.jsonl``,
  ``eval.json``, ...) is refused unless ``--overwrite``: nothing is replaced silently
  (with it, :func:`remove_outputs` clears them once the verb's inputs check out);
- an output must be a folder (or a file, for a file output) that can be created.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from yaml_config.bounds import not_a_file

__all__ = [
    "OutputError",
    "check_input_and_output",
    "prepare_outputs",
    "remove_outputs",
    "writable_problem",
]


class OutputError(ValueError):
    """An output cannot be used as asked; the message is ``<option> <path>: what``."""


def _holds(folder: Path, path: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (links and ``..`` resolved)."""
    folder, path = folder.resolve(), path.resolve()
    return path == folder or folder in path.parents


def writable_problem(path: Path, *, folder: bool) -> str | None:
    """Why ``path`` (a folder, or a file) cannot be written, or None: it exists as the other
    kind, is a file that cannot be written, or the folder that holds it (the nearest one
    that exists, where it is still to be created) is no writable folder. Creates nothing."""
    if path.exists():
        if folder and not path.is_dir():
            return "exists and is not a folder"
        if not folder and path.is_dir():
            return "is a folder, not a file"
        if not folder and not os.access(path, os.W_OK):
            return "is not writable"
        holder = path if folder else path.parent
    else:
        holder = path.parent
        while not holder.exists() and holder != holder.parent:
            holder = holder.parent
        if not holder.is_dir():
            return f"{holder} is not a folder"
    if not os.access(holder, os.W_OK | os.X_OK):
        return f"{holder} is not writable"
    return None


def _check_creatable(out: Path, where: str, *, folder: bool) -> None:
    if problem := writable_problem(out, folder=folder):
        raise OutputError(f"{where}: {problem}")


def prepare_outputs(
    out: Path,
    *,
    option: str,
    inputs: Sequence[Path | None] = (),
    products: Sequence[str] = (),
    overwrite: bool = False,
) -> list[Path]:
    """Raise :class:`OutputError` unless the folder ``out`` (given as ``option``) may
    receive a verb's ``products`` (names or glob patterns): it is no input and holds none
    of ``inputs``, can be created, and holds no earlier products unless ``overwrite``.
    Returns the earlier products (``overwrite``: the verb's to remove)."""
    where = f"{option} {out}"
    for source in (Path(p) for p in inputs if p is not None):
        if source.exists() and _holds(out, source):
            raise OutputError(
                f"{where}: is or contains the input {source}, which the output would "
                "overwrite; choose another output folder"
            )
    _check_creatable(out, where, folder=True)
    if not out.is_dir():
        return []
    found = sorted({path for pattern in products for path in out.glob(pattern)})
    if found and not overwrite:
        names = ", ".join(path.name for path in found[:4])
        raise OutputError(
            f"{where}: holds an earlier run's outputs ({names}); pass --overwrite to replace "
            "them, or choose another output folder"
        )
    return found


def remove_outputs(paths: Sequence[Path]) -> None:
    """Remove the earlier products :func:`prepare_outputs` found (files and folders)."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def check_input_and_output(source: Path, output: Path | None) -> None:
    """An input file read whole and an output file written beside it (``recommend
    --input/--output``): the input must be a regular file (a FIFO would block), the output
    a file that is not the input."""
    if problem := not_a_file(source):
        raise OutputError(f"--input {source}: {problem}")
    if output is None:
        return
    if output.exists() and output.resolve() == source.resolve():
        raise OutputError(f"--output {output}: is the --input file; choose another output")
    _check_creatable(output, f"--output {output}", folder=False)
