"""One small registry for the pluggable parts of the library.

Kinds: ``encoder`` (backbones), ``head`` (similarity heads), ``objective`` (training losses),
``section`` (a method's settings dataclass: the config's ``head``, an ``objectives`` entry, or
a top-level module section such as ``seqtransf``), ``head_traits`` and ``objective_traits``
(what the config needs to know of a built-in head or objective without importing it:
:mod:`tvr.config.traits`) and ``source`` (benchmark annotation parsers). Modules register their classes or functions
with :func:`register`; factories look them up with :func:`get`, which names the available
choices when a name is unknown.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

KINDS: tuple[str, ...] = ("encoder", "head", "objective", "section", "head_traits",
                          "objective_traits", "source")

# Packages whose import registers every built-in entry of a kind.
_PROVIDERS: dict[str, tuple[str, ...]] = {
    "encoder": ("tvr.models.backbone",),
    "head": ("tvr.models.heads",),
    "objective": ("tvr.objectives",),
    # the built-in methods' config sections and traits: torch-free (loading a config imports
    # no torch); the heads and objectives import nothing from there but their checks
    "section": ("tvr.config.methods",),
    "head_traits": ("tvr.config.methods",),
    "objective_traits": ("tvr.config.methods",),
    "source": ("tvr.data.sources",),
}

_ENTRIES: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}

T = TypeVar("T")


class RegistryError(KeyError):
    """An unknown kind or name, or a name registered twice."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


def _check_kind(kind: str) -> None:
    if kind not in _ENTRIES:
        raise RegistryError(f"unknown registry kind {kind!r}; expected one of {', '.join(KINDS)}")


def register(kind: str, name: str) -> Callable[[T], T]:
    """Decorator registering ``obj`` under ``(kind, name)``.

    Raises:
        RegistryError: for an unknown kind or a name already taken by another object.
    """
    _check_kind(kind)

    def decorator(obj: T) -> T:
        existing = _ENTRIES[kind].get(name)
        if existing is not None and existing is not obj:
            raise RegistryError(f"{kind} {name!r} is already registered ({existing!r})")
        _ENTRIES[kind][name] = obj
        return obj

    return decorator


def _load_builtins(kind: str) -> None:
    for module in _PROVIDERS.get(kind, ()):
        importlib.import_module(module)


def get(kind: str, name: str) -> Any:
    """Return the object registered under ``(kind, name)``.

    Raises:
        RegistryError: naming the unknown value and the registered choices.
    """
    _check_kind(kind)
    if name not in _ENTRIES[kind]:
        _load_builtins(kind)
    try:
        return _ENTRIES[kind][name]
    except KeyError:
        choices = ", ".join(sorted(_ENTRIES[kind])) or "(none)"
        raise RegistryError(f"unknown {kind} {name!r}; registered: {choices}") from None


def loaded(kind: str) -> list[str]:
    """Sorted names registered for ``kind`` so far, without importing the built-ins."""
    _check_kind(kind)
    return sorted(_ENTRIES[kind])


def names(kind: str) -> list[str]:
    """Sorted names registered for ``kind`` (built-ins included)."""
    _check_kind(kind)
    _load_builtins(kind)
    return sorted(_ENTRIES[kind])
