"""Strict conversion between nested dicts and the config dataclasses (and the plug-ins a
config names): an unknown key or a value of the wrong type names the key and the file."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
from collections.abc import Mapping
from typing import Any, TypeVar

from tvr.config.coerce import ConfigError, build_dataclass, coerce_value, where
from tvr.config.schema import (
    CORE_ORDER,
    HEAD_KEY,
    OBJECTIVE_DEFAULTS_KEY,
    OBJECTIVES_KEY,
    ExperimentConfig,
    HeadSpec,
    ObjectiveSpec,
    head_section,
    head_spec,
    is_registered,
    module_section_names,
    objective_sections,
    objective_spec,
    order_objectives,
    section_class,
    section_names_all,
    section_owner,
)

T = TypeVar("T")

# --------------------------------------------------------------------------------------------
# Strict conversion
# --------------------------------------------------------------------------------------------


PLUGINS_ENV = "DRGI_LAB_PLUGINS"  # comma-separated plug-in modules a run folder may import


def allowed_plugins(environ: Mapping[str, str] | None = None) -> set[str]:
    """Plug-in modules that a saved config (a run's ``config.json``) may import: those named in
    ``DRGI_LAB_PLUGINS`` (comma-separated)."""
    raw = (os.environ if environ is None else environ).get(PLUGINS_ENV, "")
    return {m.strip() for m in raw.split(",") if m.strip()}


def import_plugins(modules: list[str], origin: str = "", *, trusted: bool = False) -> None:
    """Import plug-in modules (they register heads, objectives and sections).

    Importing a module runs its code, so a data file must not pick what gets imported: a module
    is imported only when ``trusted`` (the config comes from a YAML recipe the user runs, see
    :func:`load_config`), when it is imported already, or when ``DRGI_LAB_PLUGINS`` names it.
    A run folder from elsewhere (its ``config.json``) therefore imports nothing by itself.

    Raises:
        ConfigError: naming the module and the file when a module is not allowed or its import
            fails.
    """
    where = f" in {origin}" if origin else ""
    allowed = allowed_plugins()
    for module in modules:
        if not (trusted or module in sys.modules or module in allowed):
            raise ConfigError(
                f"config key 'plugins'{where} names plug-in module {module!r}, which is not "
                "imported: a saved config cannot make DRGI Lab import code. If you trust it, "
                f"allow it with {PLUGINS_ENV}={module} (comma-separated for several)"
            )
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(
                f"config key 'plugins'{where}: cannot import plug-in module {module!r} ({exc})"
            ) from None


def _parse_head(value: Any, origin: str) -> HeadSpec:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping) or "name" not in value:
        raise ConfigError(f"config key {HEAD_KEY!r}{where(origin)}: expected a mapping with "
                          f"'name' (a registered head) and its settings, got {value!r}")
    params = {k: v for k, v in value.items() if k != "name"}
    return head_spec(value["name"], params, HEAD_KEY, origin)


def _parse_objectives(value: Any, held: Mapping[str, Any], origin: str) -> list[ObjectiveSpec]:
    if not isinstance(value, list):
        raise ConfigError(f"config key {OBJECTIVES_KEY!r}{where(origin)}: expected a list of "
                          f"objectives (names or mappings with 'name'), got {value!r}")
    specs = []
    for i, entry in enumerate(value):
        key = f"{OBJECTIVES_KEY}[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise ConfigError(f"config key {key!r}{where(origin)}: expected an objective name "
                              f"or a mapping with 'name' and its settings, got {entry!r}")
        name = entry["name"]
        is_registered("objective", name, f"{key}.name", origin)
        params = {**held.get(name, {}), **{k: v for k, v in entry.items() if k != "name"}}
        specs.append(objective_spec(name, params, OBJECTIVES_KEY, origin))
    return specs


def _parse_held(value: Any, origin: str) -> dict[str, dict[str, Any]]:
    """``objective_defaults``: per objective, settings it starts from when listed or added."""
    key = OBJECTIVE_DEFAULTS_KEY
    if not isinstance(value, Mapping):
        raise ConfigError(f"config key {key!r}{where(origin)}: expected a mapping of "
                          f"objective name to settings, got {value!r}")
    for name, params in value.items():
        is_registered("objective", name, f"{key}.{name}", origin)
        if not isinstance(params, Mapping):
            raise ConfigError(f"config key '{key}.{name}'{where(origin)}: expected a mapping, "
                              f"got {params!r}")
        objective_spec(name, params, key, origin)  # strict: known keys, right types
    return {str(k): dict(v) for k, v in value.items()}


def _build_experiment(data: dict[str, Any], origin: str, trusted: bool,
                      complete: bool = True) -> ExperimentConfig:
    """:class:`ExperimentConfig` from a nested dict: core fields, head, objectives, modules.

    An old-shape dict (``model.head`` and one section per method with ``enable`` switches) is
    converted first (:func:`tvr.config.migrate.migrate`). ``complete``: check the objectives
    against each other and the head (False for one layer of a composed file).
    """
    from tvr.config.migrate import is_old_shape, migrate

    plugins = coerce_value(data.get("plugins", []), list[str], "plugins", origin)
    import_plugins(plugins, origin, trusted=trusted)
    if is_old_shape(data):
        data = migrate(data)
    modules = module_section_names(plugins)
    held = _parse_held(data.get(OBJECTIVE_DEFAULTS_KEY, {}), origin)
    core: dict[str, Any] = {}
    own: dict[str, Any] = {}
    head = HeadSpec()
    objectives = None
    for key, value in data.items():
        if key in CORE_ORDER or key == "train":
            core[key] = value
        elif key == HEAD_KEY:
            head = _parse_head(value, origin)
        elif key == OBJECTIVES_KEY:
            objectives = _parse_objectives(value, held, origin)
        elif key == OBJECTIVE_DEFAULTS_KEY:
            continue
        elif key in modules:
            own[key] = coerce_value(value, section_class(key), key, origin)
        else:
            known = sorted([*CORE_ORDER, "train", HEAD_KEY, OBJECTIVES_KEY,
                            OBJECTIVE_DEFAULTS_KEY, *modules])
            hint = ""
            if key in section_names_all():
                if key in objective_sections() or key in {head_section(h) for h in _heads()}:
                    hint = (f" ({key!r} belongs to a method: set it under 'head' or "
                            f"'objectives', e.g. objectives.{key}.<key>=... or head.<key>=...)")
                else:
                    hint = f" (plug-in module {section_owner(key)!r} registers it: list it under plugins)"
            raise ConfigError(
                f"unknown config key {key!r}{where(origin)}{hint}; known keys here: "
                f"{', '.join(known)}"
            )
    if objectives is None:
        objectives = [objective_spec("infonce", held.get("infonce"), OBJECTIVES_KEY, origin)]
    if complete:
        objectives = order_objectives(objectives, head.name, origin)
        for kind, name, key in (("head", head.name, "head.name"),
                                *(("objective", o.name, OBJECTIVES_KEY) for o in objectives)):
            _check_plugin_listed(kind, name, key, plugins, origin)
    cfg = build_dataclass(ExperimentConfig, core, "", origin)
    cfg.head, cfg.objectives = head, objectives
    cfg.modules.update(own)
    return cfg


def _check_plugin_listed(kind: str, name: str, key: str, plugins: list[str], origin: str) -> None:
    """A method registered outside ``tvr`` must come from a module under ``plugins`` (so the
    run's config.json rebuilds it in another process)."""
    from tvr.config.traits import method_module

    module = method_module(kind, name)
    if module.split(".")[0] != "tvr" and module not in plugins:
        raise ConfigError(
            f"config key {key!r}{where(origin)}: {kind} {name!r} comes from plug-in module "
            f"{module!r}, which registers it: list it under plugins")


def _heads() -> list[str]:
    from tvr.config.traits import method_names

    return method_names("head")


def from_dict(data: dict[str, Any], cls: type[T] = ExperimentConfig, origin: str = "",  # type: ignore[assignment]
              *, trusted_plugins: bool = False, complete: bool = True) -> T:
    """Build ``cls`` from a nested dict, strictly (unknown keys and wrong types raise).

    For :class:`ExperimentConfig` the ``plugins`` are imported first (see
    :func:`import_plugins`; ``trusted_plugins`` for a recipe the user runs), and every other
    top-level key must be a core field, ``head``, ``objectives``, ``objective_defaults`` or a
    module section. An old-shape dict (a committed run's ``config.json``) is migrated first.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{origin or 'config'}: expected a mapping at the top level, got {data!r}")
    if cls is ExperimentConfig:
        return _build_experiment(data, origin, trusted_plugins, complete)  # type: ignore[return-value]
    return build_dataclass(cls, data, "", origin)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain JSON-able nested dicts (tuples become lists).

    An :class:`ExperimentConfig` is written in the canonical shape: core fields, ``head:
    {name, ...}``, ``objectives: [{name, weight, ...}, ...]``, the module sections by name,
    ``train`` (``plugins`` only when there are any).
    """
    if not isinstance(cfg, ExperimentConfig):
        return json.loads(json.dumps(dataclasses.asdict(cfg)))
    out: dict[str, Any] = {}
    for key in CORE_ORDER:
        if key != "plugins" or cfg.plugins:
            value = getattr(cfg, key)
            out[key] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    head = cfg.head.params
    out[HEAD_KEY] = {"name": cfg.head.name, **(dataclasses.asdict(head) if head else {})}
    out[OBJECTIVES_KEY] = [{"name": o.name, **dataclasses.asdict(o.params)}
                           for o in cfg.objectives]
    for name in sorted(cfg.modules):
        out[name] = dataclasses.asdict(cfg.modules[name])
    out["train"] = dataclasses.asdict(cfg.train)
    return json.loads(json.dumps(out))
