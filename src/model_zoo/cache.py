"""Where converted models live, and how a cached folder proves it is whole.

Each cached model is a folder ``<cache_root>/<name>/`` with a ``zoo_manifest.json``
listing every file with its size and a SHA-256 fingerprint. A folder is only ever
published by an atomic rename of a fully written temporary folder, so an interrupted
conversion leaves nothing behind; a folder damaged afterwards (file missing, truncated,
overwritten) fails :func:`is_intact` and is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

MANIFEST = "zoo_manifest.json"
_SAMPLE_BYTES = 1 << 20  # large files: fingerprint head and tail only (fast path)
_FULL_HASH_LIMIT = 8 << 20


def cache_root() -> Path:
    """``$OBSERVE_EAGER_CACHE`` if set, else ``$XDG_CACHE_HOME/observe-eager``, else
    ``~/.cache/observe-eager``."""
    explicit = os.environ.get("OBSERVE_EAGER_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "observe-eager"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a whole file, read in 4 MiB blocks (an identity: every byte counts)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(path: Path) -> str:
    """SHA-256 of a file; of its size, first and last MiB only when it is large.

    A fast damage check (truncated, overwritten, replaced file), not an identity: two
    weight files that differ only in their middle tensors share it; use
    :func:`file_sha256` to tell models apart.
    """
    size = path.stat().st_size
    if size <= _FULL_HASH_LIMIT:
        return file_sha256(path)
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(_SAMPLE_BYTES))
        handle.seek(size - _SAMPLE_BYTES)
        digest.update(handle.read(_SAMPLE_BYTES))
    return digest.hexdigest()


def write_manifest(folder: Path) -> None:
    files = {
        str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": fingerprint(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1))


def is_intact(folder: Path) -> bool:
    """True when every file of the manifest is present with its recorded size and hash."""
    manifest_path = folder / MANIFEST
    try:
        files = json.loads(manifest_path.read_text())["files"]
    except (OSError, ValueError, KeyError):
        return False
    for relative, expected in files.items():
        path = folder / relative
        if not path.is_file() or path.stat().st_size != expected["size"]:
            return False
        if fingerprint(path) != expected["sha256"]:
            return False
    return True


def build_cached(name: str, build: Callable[[Path], None], *, rebuild: bool = False) -> Path:
    """Return ``<cache_root>/<name>``, building it with ``build(tmp_folder)`` when it is
    missing, damaged, or ``rebuild`` is set. ``build`` writes a complete HF folder."""
    target = cache_root() / name
    if not rebuild and is_intact(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        build(staging)
        write_manifest(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
