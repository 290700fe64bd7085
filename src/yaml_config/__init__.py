"""YAML run configs shared by both systems: read a file, parse ``key=value`` overrides,
build a ``TrainingArguments``-style dataclass with errors that name the file and the key.

YAML 1.1 (PyYAML) resolves a float only when it has a dot, so ``learning_rate: 1e-5``
would load as the string ``"1e-5"`` and fail deep inside ``TrainingArguments``.
:class:`ConfigLoader` also reads exponent-only numbers (``1e-5``, ``3E+4``) as floats, as
YAML 1.2 does, and refuses a key given twice in one mapping (PyYAML keeps the last one
silently); every other value resolves as in ``yaml.safe_load``. Reading is bounded
(:mod:`yaml_config.bounds`): regular files under a size cap, aliases expanded under a cap.

Values are checked before any model is loaded: :func:`build_config` checks types (a bool
or a string where a number is wanted, ``null`` where it is not allowed), a config's
``__post_init__`` checks ranges with :func:`check_ranges` (:data:`TRAINING_RANGES` for the
``TrainingArguments`` keys both systems share). A :class:`ConfigError` knows the key it is
about, so :func:`blame_override` can put the blame on the ``--set`` that gave the value.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from yaml_config.bounds import check_expansion, read_text
from yaml_config.limits import (
    MAX_BATCH,
    MAX_EPOCHS,
    MAX_LORA_RANK,
    MAX_SEED,
    MAX_STEPS,
)

__all__ = [
    "AT_LEAST_1",
    "BATCH",
    "LORA_RANGES",
    "NON_NEGATIVE",
    "POSITIVE",
    "PROBABILITY",
    "TRAINING_RANGES",
    "ConfigError",
    "ConfigLoader",
    "Range",
    "blame_override",
    "build_config",
    "check_lora_block",
    "check_ranges",
    "load_value",
    "parse_override",
    "read_mapping",
]


class ConfigError(ValueError):
    """A configuration file or override is invalid (the message names file and key).

    ``key`` is the config key the error is about (None when it is about no single key);
    ``detail`` the message without the leading ``source:``."""

    def __init__(self, message: str, *, key: str | None = None, detail: str | None = None):
        super().__init__(message)
        self.key = key
        self.detail = message if detail is None else detail

    def at(self, where: str) -> ConfigError:
        """The same error blamed on ``where`` (a file, ``--set key=value``, an option)."""
        return ConfigError(f"{where}: {self.detail}", key=self.key, detail=self.detail)


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-5`` style numbers as floats and refuses
    duplicate keys."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, typing.Hashable):
                    continue  # the stock constructor refuses it
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (first given on line {seen[key]})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)

    def get_single_data(self):
        node = self.get_single_node()
        check_expansion(node)  # before anything is built: an alias bomb fails here
        return None if node is None else self.construct_document(node)


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_value(text: str) -> Any:
    """One YAML document (a file's text or an override's value) with :class:`ConfigLoader`;
    a document nested too deeply to compose is a ``yaml.YAMLError``."""
    try:
        return yaml.load(text, Loader=ConfigLoader)
    except RecursionError:
        raise yaml.YAMLError("nested too deeply for a config") from None


def _yaml_problem(error: yaml.YAMLError) -> tuple[int | None, str]:
    """(1-based line or None, one-line reason) of a YAML error."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        reason = ", ".join(part for part in (error.context, error.problem) if part)
        return (mark.line + 1 if mark else None), reason or str(error).splitlines()[0]
    return None, str(error).splitlines()[0]


def read_mapping(path: str | Path | None) -> dict[str, Any]:
    """The top-level mapping of a YAML file; ``{}`` when ``path`` is empty or the file is."""
    if not path:
        return {}
    try:
        loaded = load_value(read_text(path)) or {}
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config: {error.strerror or error}") from None
    except ValueError as error:  # not a regular file, over the size cap, not UTF-8
        raise ConfigError(f"{path}: {error}") from None
    except yaml.YAMLError as error:
        line, reason = _yaml_problem(error)
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(f"{where}: {reason}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
    return loaded


def parse_override(item: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``(key, value)``, the value parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: is not key=value")
    key, raw = item.split("=", 1)
    if not key.strip():
        raise ConfigError(f"--set {item}: no key before '='")
    try:
        return key.strip(), load_value(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {item}: {_yaml_problem(error)[1]}", key=key.strip()) from None


def blame_override(
    error: ConfigError,
    overrides: Sequence[str] = (),
    flags: Mapping[str, str] | None = None,
    source: str | None = None,
) -> ConfigError:
    """``error`` blamed on what set its key: an option of ``flags`` (config key -> how it
    was given, e.g. ``"--max-steps 0"``), else the last ``--set key=value`` of
    ``overrides``, else ``source`` (the config file) when the message names no place yet;
    else ``error`` itself."""
    if error.key is None:
        return error
    if flags and error.key in flags:
        return error.at(flags[error.key])
    for item in reversed(overrides):
        given = item.split("=", 1)[0].strip()
        if given == error.key or given.startswith(f"{error.key}."):  # lora.r: key 'lora'
            return error.at(f"--set {item}")
    if source and str(error) == error.detail:
        return error.at(source)
    return error


def _members(annotation: Any) -> set[Any]:
    """The members of a union annotation (``{annotation}`` for any other)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set(typing.get_args(annotation))
    return {annotation}


def _plain_types(annotation: Any) -> tuple[set[type], bool]:
    """(the non-None member types, whether None is allowed) of a field annotation."""
    members = _members(annotation)
    optional = type(None) in members
    return {m for m in members if isinstance(m, type) and m is not type(None)}, optional


def _field_types(config_class) -> dict[str, Any]:
    try:
        return typing.get_type_hints(config_class)
    except Exception:  # an annotation that does not resolve: no type checks for any field
        return {}


def _type_problem(annotation: Any, value: Any) -> str | None:
    """Why ``value`` does not fit a plain int / float / bool / str field (None: it fits or
    the field is of another kind)."""
    members, optional = _plain_types(annotation)
    if _members(annotation) - {type(None)} == {str}:  # a path or a name: no number, no list
        if value is None:
            return None if optional else "must not be null"
        return None if isinstance(value, str) else f"must be a string, got {value!r}"
    if not members or not members <= {int, float, bool}:
        return None  # strings, lists, dicts, enums: the class checks them
    if value is None:
        return None if optional else "must not be null"
    wanted = " or ".join(sorted(m.__name__ for m in members))
    if isinstance(value, bool):
        return None if bool in members else f"must be {wanted}, got {value!r}"
    if bool in members and members == {bool}:
        return f"must be true or false, got {value!r}"
    if isinstance(value, int) and members & {int, float}:
        return None
    if isinstance(value, float) and float in members:
        return None
    return f"must be {wanted}, got {value!r}"


def _nested(values: dict[str, Any], fields: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``values`` with each ``block.key`` (``--set lora.r=4``) of a known ``block`` set
    inside that block's mapping (created when unset or null)."""
    values = dict(values)
    for dotted in [key for key in values if "." in key and key.split(".", 1)[0] in fields]:
        block, key = dotted.split(".", 1)
        current = values.get(block)
        if current is not None and not isinstance(current, dict):
            detail = f"'{block}' is {current!r}, not a mapping: cannot set '{dotted}'"
            raise ConfigError(f"{source}: {detail}", key=dotted, detail=detail)
        values[block] = {**(current or {}), key: values.pop(dotted)}
    return values


def build_config(config_class, values: dict[str, Any], source: str, extra_keys=()):
    """``config_class(**values)`` for a ``TrainingArguments`` subclass, ``report_to`` "none"
    unless set; ``block.key`` sets ``key`` inside the mapping ``block``. An unknown key (in
    ``values`` or ``extra_keys``), a value of the wrong kind
    for a plain ``int`` / ``float`` / ``bool`` / ``str`` field (also ``X | None``: a bool
    or a string where a number is wanted, a number where a name or path is, ``null`` where
    None is not allowed), and the class's own
    ``TypeError`` or ``ValueError``, then a NaN or infinity in any number key, become one
    :class:`ConfigError` line starting with ``source``, with its ``key`` set where one key
    is to blame."""
    fields = {field.name: field for field in dataclasses.fields(config_class) if field.init}
    values = _nested(values, fields, source)
    if unknown := [key for key in [*values, *extra_keys] if key not in fields]:
        detail = f"unknown config key '{unknown[0]}'"
        raise ConfigError(f"{source}: {detail}", key=unknown[0], detail=detail)
    hints = _field_types(config_class)
    for key, value in values.items():
        if key in hints and (problem := _type_problem(hints[key], value)):
            detail = f"'{key}' {problem}"
            raise ConfigError(f"{source}: {detail}", key=key, detail=detail)
    values = {"report_to": "none", **values}
    try:
        config = config_class(**values)
    except ConfigError as error:
        raise error.at(source) from None
    except (TypeError, ValueError, ZeroDivisionError) as error:
        raise ConfigError(f"{source}: {str(error).splitlines()[0]}") from None
    # after the class's own range checks, which say more about the keys they know
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            detail = f"'{key}' must be a finite number, got {value!r}"
            raise ConfigError(f"{source}: {detail}", key=key, detail=detail)
    return config


def _number(value: float) -> str:
    """``value`` as typed: whole numbers in full (4294967295, not 4.29497e+09)."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e16 else f"{value:g}"


@dataclass(frozen=True)
class Range:
    """Allowed values of a number key: ``low <= value`` (``low < value`` when
    ``low_open``), likewise ``high``; ``integer`` wants a whole number; values in ``also``
    (e.g. -1: "unset") and None always pass. NaN and infinities never do."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    also: tuple = ()

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {_number(self.low)}")
        if self.high is not None:
            bounds.append(f"{'<' if self.high_open else '<='} {_number(self.high)}")
        text = f"{kind} {' and '.join(bounds)}" if bounds else f"a finite {kind[2:]}"
        return text + "".join(f" (or {value})" for value in self.also)

    def admits(self, value: Any) -> bool:
        if value is None or (not isinstance(value, bool) and value in self.also):
            return True
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if not math.isfinite(value) or (self.integer and value != int(value)):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (
            self.high is not None and (value >= self.high if self.high_open else value > self.high)
        )


AT_LEAST_1 = Range(1, integer=True)
POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
PROBABILITY = Range(0, 1, high_open=True)
BATCH = Range(1, MAX_BATCH, integer=True)
STEPS = Range(0, MAX_STEPS, low_open=True)  # a step count or interval (< 1: a ratio)

# TrainingArguments keys both systems use; a config adds its own. Sizes are capped
# (yaml_config.limits) so that a typo cannot allocate or train without bound.
TRAINING_RANGES: dict[str, Range] = {
    "per_device_train_batch_size": BATCH,
    "per_device_eval_batch_size": BATCH,
    "gradient_accumulation_steps": BATCH,
    "learning_rate": POSITIVE,
    "weight_decay": NON_NEGATIVE,
    "adam_beta1": PROBABILITY,
    "adam_beta2": PROBABILITY,
    "adam_epsilon": POSITIVE,
    "max_grad_norm": NON_NEGATIVE,
    "num_train_epochs": Range(0, MAX_EPOCHS, low_open=True),
    "max_steps": Range(1, MAX_STEPS, integer=True, also=(-1,)),
    "warmup_steps": Range(0, MAX_STEPS),
    "logging_steps": STEPS,
    "save_steps": STEPS,
    "eval_steps": STEPS,
    "save_total_limit": AT_LEAST_1,
    "seed": Range(0, MAX_SEED, integer=True),
    "data_seed": Range(0, MAX_SEED, integer=True),
    "dataloader_num_workers": Range(0, 256, integer=True),
}

# A ``lora:`` block (both systems: r, alpha, dropout, targets).
LORA_RANGES: dict[str, Range] = {
    "r": Range(1, MAX_LORA_RANK, integer=True),
    "alpha": Range(0, 1e6, low_open=True),
    "dropout": PROBABILITY,
}


def check_ranges(config: Any, ranges: Mapping[str, Range], prefix: str = "") -> None:
    """Raise :class:`ConfigError` (``key`` set) for the first attribute of ``config`` (an
    object, or a mapping) outside its :class:`Range`; ``prefix`` names a nested block."""
    for key, allowed in ranges.items():
        value = config.get(key) if isinstance(config, Mapping) else getattr(config, key, None)
        if not allowed.admits(value):
            detail = f"'{prefix}{key}' must be {allowed.describe()}, got {value!r}"
            raise ConfigError(detail, key=prefix + key if not prefix else prefix.rstrip("."))


def check_lora_block(block: Any, known: Sequence[str]) -> None:
    """Raise :class:`ConfigError` (key ``lora``) unless ``block`` is a ``lora:`` mapping of
    ``known`` keys with r, alpha, dropout in range and targets a name or a list of names."""
    if not isinstance(block, Mapping):
        detail = f"'lora' must be a mapping of r, alpha, dropout, targets, got {block!r}"
        raise ConfigError(detail, key="lora")
    if unknown := sorted(set(block) - set(known)):
        detail = f"unknown key 'lora.{unknown[0]}' (known: {', '.join(sorted(known))})"
        raise ConfigError(detail, key="lora")
    check_ranges(block, LORA_RANGES, prefix="lora.")
    targets = block.get("targets", "")
    names = [targets] if isinstance(targets, str) else targets
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        detail = f"'lora.targets' must be a module name or a list of them, got {targets!r}"
        raise ConfigError(detail, key="lora")
