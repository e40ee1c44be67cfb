"""Strict coercion of plain values into the config dataclasses: an unknown key or a value of the
wrong type raises :class:`ConfigError` naming the dotted key and the file it came from."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key or value that does not fit the schema."""


def type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce_value(value: Any, tp: Any, key: str, origin: str) -> Any:
    """Check/convert ``value`` to the annotated type ``tp``; raise ConfigError naming ``key``."""
    where = f" in {origin}" if origin else ""
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r}{where}: expected a mapping, got {value!r}")
        return build_dataclass(tp, value, key, origin)
    org = typing.get_origin(tp)
    args = typing.get_args(tp)
    if org in (typing.Union, types.UnionType):
        errors = []
        for arg in args:
            if arg is type(None):
                if value is None:
                    return None
                continue
            try:
                return coerce_value(value, arg, key, origin)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            f"config key {key!r}{where}: expected {type_name(tp)}, got {value!r}"
        )
    if org is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(
                f"config key {key!r}{where}: expected a list of {len(args)} values, got {value!r}"
            )
        return tuple(coerce_value(v, a, f"{key}[{i}]", origin) for i, (v, a) in enumerate(zip(value, args)))
    if org is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key {key!r}{where}: expected a list, got {value!r}")
        return [coerce_value(v, args[0], f"{key}[{i}]", origin) for i, v in enumerate(value)]
    if org is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r}{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key {key!r}{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key {key!r}{where}: expected a string, got {value!r}")
    raise ConfigError(f"config key {key!r}{where}: unsupported type {type_name(tp)}")


def build_dataclass(cls: type[T], data: dict[str, Any], prefix: str, origin: str) -> T:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in known:
            where = f" in {origin}" if origin else ""
            raise ConfigError(
                f"unknown config key {key!r}{where}; known keys here: {', '.join(sorted(known))}"
            )
        kwargs[k] = coerce_value(v, hints[k], key, origin)
    return cls(**kwargs)


def where(origin: str) -> str:
    return f" in {origin}" if origin else ""
