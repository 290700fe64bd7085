"""YAML run configs shared by both systems: read a file, parse ``key=value`` overrides,
build a ``TrainingArguments``-style dataclass with errors that name the file and the key.

YAML 1.1 (PyYAML) resolves a float only when it has a dot, so ``learning_rate: 1e-5``
would load as the string ``"1e-5"`` and fail deep inside ``TrainingArguments``.
:class:`ConfigLoader` also reads exponent-only numbers (``1e-5``, ``3E+4``) as floats, as
YAML 1.2 does; every other value resolves as in ``yaml.safe_load``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ConfigError",
    "ConfigLoader",
    "build_config",
    "load_value",
    "parse_override",
    "read_mapping",
]


class ConfigError(ValueError):
    """A configuration file or override is invalid (the message names file and key)."""


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-5`` style numbers as floats."""


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_value(text: str) -> Any:
    """One YAML document (a file's text or an override's value) with :class:`ConfigLoader`."""
    return yaml.load(text, Loader=ConfigLoader)


def read_mapping(path: str | Path | None) -> dict[str, Any]:
    """The top-level mapping of a YAML file; ``{}`` when ``path`` is empty or the file is."""
    if not path:
        return {}
    try:
        loaded = load_value(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read config: {error}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
    return loaded


def parse_override(item: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``(key, value)``, the value parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value")
    key, raw = item.split("=", 1)
    try:
        return key.strip(), load_value(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"override {item!r}: {str(error).splitlines()[0]}") from None


_ACCEPTED_NUMBERS = {float: (int, float), int: (int,)}  # plain field type -> value types


def build_config(config_class, values: dict[str, Any], source: str, extra_keys=()):
    """``config_class(**values)`` for a ``TrainingArguments`` subclass, ``report_to`` "none"
    unless set. An unknown key (in ``values`` or ``extra_keys``), a string or bool where a
    plain ``float``/``int`` field wants a number, and the class's own ``TypeError`` or
    ``ValueError`` become one :class:`ConfigError` line starting with ``source``."""
    fields = {field.name: field for field in dataclasses.fields(config_class) if field.init}
    if unknown := [key for key in [*values, *extra_keys] if key not in fields]:
        raise ConfigError(f"{source}: unknown config key '{unknown[0]}'")
    for key, value in values.items():
        field_type = {"float": float, "int": int}.get(fields[key].type, fields[key].type)
        accepted = _ACCEPTED_NUMBERS.get(field_type)
        if accepted and (isinstance(value, bool) or not isinstance(value, accepted)):
            raise ConfigError(f"{source}: '{key}' must be {field_type.__name__}, got {value!r}")
    values = {"report_to": "none", **values}
    try:
        return config_class(**values)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: {str(error).splitlines()[0]}") from None
