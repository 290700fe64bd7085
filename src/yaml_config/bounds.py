"""Bounded reading of a config: regular files only, a size cap, aliases expanded under a cap.

A config is read whole before anything else happens, so a hostile one must fail fast:
``--config /dev/zero`` or a FIFO would read (or block) forever, and a kilobyte of nested
YAML aliases (an "alias bomb") expands to billions of values. :func:`read_text` refuses
what is not a regular file without blocking on it and files over :data:`MAX_CONFIG_BYTES`;
:func:`check_expansion` refuses a document whose aliases expand to more than
:data:`MAX_CONFIG_NODES` values, or that refers to itself, before it is constructed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

__all__ = ["MAX_CONFIG_BYTES", "MAX_CONFIG_NODES", "check_expansion", "not_a_file", "read_text"]

MAX_CONFIG_BYTES = 1 << 20  # 1 MiB; the largest shipped config is a few kB
MAX_CONFIG_NODES = 100_000  # values after expanding aliases; a config has a few hundred


def not_a_file(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as an input file (None: it is a regular file). Never
    opens it, so a FIFO or a device is refused without blocking or reading."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return f"cannot read: {error.strerror or error}"
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a FIFO, socket or device): give a file"
    return None


def read_text(path: str | Path, cap: int = MAX_CONFIG_BYTES) -> str:
    """The UTF-8 text of the regular file ``path`` of at most ``cap`` bytes; ``ValueError``
    (message without the path) otherwise, ``OSError`` when it cannot be opened."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens without a writer
    with os.fdopen(descriptor, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError("is not a regular file (a FIFO, socket or device): give a file")
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise ValueError(f"is larger than the cap of {cap} bytes for a config file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text ({error})") from None


def check_expansion(root: yaml.Node | None, cap: int = MAX_CONFIG_NODES) -> None:
    """Raise ``yaml.YAMLError`` (marked at the node) when the document ``root`` holds a
    node that contains itself or expands, aliases followed, to more than ``cap`` nodes.
    Each node is sized once, so the check is linear in the composed (unexpanded) graph."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in open_nodes:
            raise yaml.composer.ComposerError(
                None, None, "an alias refers to the node that contains it", node.start_mark
            )
        total = 1
        if isinstance(node, yaml.SequenceNode | yaml.MappingNode):
            open_nodes.add(id(node))
            for child in node.value:  # nodes, or (key, value) pairs of a mapping
                for part in child if isinstance(child, tuple) else (child,):
                    total += size(part)
                    if total > cap:
                        raise yaml.composer.ComposerError(
                            None,
                            None,
                            f"aliases expand to more than {cap} values (the cap of a config)",
                            node.start_mark,
                        )
            open_nodes.discard(id(node))
        sizes[id(node)] = total
        return total

    if root is not None:
        size(root)
