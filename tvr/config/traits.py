"""What loading a config needs to know of a head or an objective, without importing its code.

A config names its head and objectives; checking it needs, of each, the section holding its
settings and how it fits with the others (``with_objectives``, ``owner_head``, ``replaces``,
``order``: :class:`tvr.models.heads.base.SimilarityHead` and
:class:`tvr.objectives.base.Objective` describe them). The built-in methods declare these
**traits** in :mod:`tvr.config.methods` (one module per method, beside its section), which
imports no ``torch``: the app's start (the demo and bundle freshness checks, the model cards)
validates run configs in well under a second instead of first importing torch and every head.

A plug-in that registers only its classes (``@register("head", ...)`` with the class
attributes) needs no declaration: :func:`method` reads the same attributes from the class.
``tests/test_registry_contracts.py`` checks that each built-in class and its declaration agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tvr.registry import RegistryError, get, loaded, names, register

HEAD_TRAITS, OBJECTIVE_TRAITS = "head_traits", "objective_traits"  # registry kinds
_TRAITS_KIND = {"head": HEAD_TRAITS, "objective": OBJECTIVE_TRAITS}


@dataclass(frozen=True)
class HeadTraits:
    """A head as the config sees it (the class attributes of the same names).

    Attributes:
        name: registry name.
        module: the module that registers the head's class (imported only to build it).
        section: the config section of its settings (None: it has none).
        with_objectives: objectives it brings when chosen by override (``head.name=``).
    """

    name: str
    module: str
    section: str | None = None
    with_objectives: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObjectiveTraits:
    """An objective as the config sees it (the class attributes of the same names).

    Attributes:
        name: registry name.
        module: the module that registers the objective's class.
        section: the config section of its settings (with a ``weight`` field).
        owner_head: it trains only with this head (None: any head).
        replaces: an objective it cannot be listed with.
        order: its position among the objectives.
    """

    name: str
    module: str
    section: str
    owner_head: str | None = None
    replaces: str | None = None
    order: int = 50


def declare_head(name: str, module: str, section: str | None = None,
                 with_objectives: tuple[str, ...] = ()) -> HeadTraits:
    """Register the traits of head ``name`` (whose class ``module`` registers); returns them."""
    traits = HeadTraits(name, module, section, tuple(with_objectives))
    return register(HEAD_TRAITS, name)(traits)


def declare_objective(name: str, module: str, section: str, owner_head: str | None = None,
                      replaces: str | None = None, order: int = 50) -> ObjectiveTraits:
    """Register the traits of objective ``name`` (whose class ``module`` registers)."""
    traits = ObjectiveTraits(name, module, section, owner_head, replaces, order)
    return register(OBJECTIVE_TRAITS, name)(traits)


def _kind(kind: str) -> str:
    try:
        return _TRAITS_KIND[kind]
    except KeyError:
        raise ValueError(f"kind {kind!r}: expected 'head' or 'objective'") from None


def method_names(kind: str) -> list[str]:
    """Sorted names of the heads (``kind="head"``) or objectives a config may name: the
    declared built-ins and every class registered so far (plug-ins), without importing the
    built-in classes."""
    return sorted(set(names(_kind(kind))) | set(loaded(kind)))


def method(kind: str, name: str) -> Any:
    """The traits of head or objective ``name``: its declaration, else its registered class
    (a plug-in's), which has the same attributes (``section``, ``with_objectives``;
    ``owner_head``, ``replaces``, ``order``; :func:`method_module` for its module).

    Raises:
        RegistryError: ``name`` is neither declared nor registered (listing the choices).
    """
    choices = method_names(kind)
    if name not in choices:
        raise RegistryError(f"unknown {kind} {name!r}; registered: {', '.join(choices)}")
    return get(_kind(kind), name) if name in names(_kind(kind)) else get(kind, name)


def method_module(kind: str, name: str) -> str:
    """The module that registers the class of head or objective ``name``."""
    traits = method(kind, name)
    return traits.module if isinstance(traits, HeadTraits | ObjectiveTraits) else traits.__module__
