"""The old config shape and the old override keys, converted to ``head`` / ``objectives``.

Old shape (a committed run's ``config.json``, YAML from before the change)::

    model: {head: wti, ...}
    wti: {arch: 2, ...}                          # one key per registered section
    cdcr: {enable: true, weight: 0.001, ...}     # an objective is trained when its switch is on
    tcmgc: {..., sdr: true, sdr_weight: 0.5}     # SDR's switch and weight lived in its head's
    gare: {..., regularize: true, beta: ...}     # section, as did the GARE regularisers'

Canonical shape (docs/adding-a-method.md, "Config shape")::

    model: {...}                                 # no 'head'
    head: {name: wti, arch: 2, ...}              # the head and its own settings
    objectives: [{name: infonce, weight: 1.0}, {name: cdcr, weight: 0.001, ...}]
    seqtransf: {...}                             # module sections (no method owns them)
    objective_defaults: {drgi: {weight: 1.0}}    # settings an objective starts from when added

:func:`migrate` converts a whole old-shape dict (which objectives it trains follows the old
rule, kept here and nowhere else); :func:`apply_canonical_overrides` applies dotted overrides
to a canonical dict, translating the old keys (``model.head=wti``, ``drgi.enable=true``,
``drgi.weight=0.1``, ``tcmgc.sdr=false``, ``gare.beta=...``) with :func:`alias_override`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from tvr.config.coerce import ConfigError
from tvr.config.files import merge_dicts, parse_override
from tvr.config.schema import (
    HEAD_KEY,
    OBJECTIVE_DEFAULTS_KEY,
    OBJECTIVES_KEY,
    head_section,
    module_section_names,
    objective_section,
    objective_spec,
    section_class,
)
from tvr.config.traits import method, method_names

# Objectives whose switch and settings lived in their head's section in the old shape:
# objective -> (head section, switch, {old key: new key}).
_IN_HEAD_SECTION: dict[str, tuple[str, str, dict[str, str]]] = {
    "sdr": ("tcmgc", "sdr", {"sdr_weight": "weight"}),
    "gare_reg": ("gare", "regularize", {k: k for k in (
        "beta", "alpha", "lambda_dir", "lambda_eps", "lambda_low", "trust_region")}),
}
# The old schema's values for keys an old config.json may lack (written before they existed).
_OLD_DEFAULTS: dict[str, dict[str, Any]] = {
    "model": {"head": "seqtransf"}, "tcmgc": {"sdr": True}, "gare": {"regularize": True}}
_SWITCH = "enable"  # every other objective's switch, in its own section
HEAD_SECTION = "@head"  # marker of a translated ``<head section>.<key>`` override


def _method_sections() -> set[str]:
    return {head_section(n) for n in method_names("head")} - {None} | {
        objective_section(n) for n in method_names("objective")} | {s for s, _, _ in
                                                              _IN_HEAD_SECTION.values()}


def is_new_shape(data: Mapping[str, Any]) -> bool:
    """True for a dict (or one file of a composition) with canonical keys."""
    return any(k in data for k in (HEAD_KEY, OBJECTIVES_KEY, OBJECTIVE_DEFAULTS_KEY))


def is_old_shape(data: Mapping[str, Any]) -> bool:
    """True for a dict in the old shape: ``model.head`` or a method's section as a top-level
    key, and no canonical key (a dict with neither, e.g. only ``train``, is both shapes)."""
    if is_new_shape(data):
        return False
    model = data.get("model")
    modules = set(module_section_names(_plugins(data)))
    return (isinstance(model, Mapping) and "head" in model) or any(
        k in _method_sections() - modules for k in data)


def _plugins(data: Mapping[str, Any]) -> list[str]:
    plugins = data.get("plugins", [])
    return [str(p) for p in plugins] if isinstance(plugins, list) else []


def _old_value(src: Mapping[str, Any], section: str, key: str, fallback: Any) -> Any:
    sec = src.get(section)
    if isinstance(sec, Mapping) and key in sec:
        return sec[key]
    return _OLD_DEFAULTS.get(section, {}).get(key, fallback)


def _old_selection(src: Mapping[str, Any], head: str) -> list[str]:
    """The objectives an old-shape config trained with (the old rule): InfoNCE always, unless
    replaced; every other objective whose switch is on and whose owner head (if any) is the
    head; in declared order."""
    chosen = []
    for name in method_names("objective"):
        cls = method("objective", name)
        if cls.owner_head is not None and cls.owner_head != head:
            continue
        if name in _IN_HEAD_SECTION:
            section, switch, _ = _IN_HEAD_SECTION[name]
            on = _old_value(src, section, switch, False)
        else:
            on = name == "infonce" or _old_value(src, objective_section(name), _SWITCH, False)
        if on:
            chosen.append(name)
    replaced = {method("objective", n).replaces for n in chosen}
    return sorted((n for n in chosen if n not in replaced),
                  key=lambda n: (method("objective", n).order, n))


def _old_params(src: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Objective ``name``'s settings in an old-shape dict, under their new keys."""
    if name in _IN_HEAD_SECTION:
        section, _, keys = _IN_HEAD_SECTION[name]
        sec = src.get(section) or {}
        return {new: sec[old] for old, new in keys.items() if old in sec}
    sec = src.get(objective_section(name)) or {}
    return {k: v for k, v in sec.items() if k != _SWITCH}


def migrate(old: Mapping[str, Any]) -> dict[str, Any]:
    """Convert an old-shape config dict to the canonical shape (any other dict: a copy).

    The head is ``model.head``, with its section's settings (less the switches and settings
    of the objectives that lived there); the objectives follow the old rule, each with its
    settings and weight; the settings of objectives that were not on, where they differ from
    the defaults, go to ``objective_defaults`` (so an old recipe that set ``drgi.weight`` with
    DRGI off still gives that weight when ``drgi.enable=true`` adds it); other heads' sections
    are dropped (they had no effect).
    """
    src = copy.deepcopy(dict(old))
    if not is_old_shape(src):
        return src
    model = dict(src.get("model", {}))
    head = str(model.pop("head", _OLD_DEFAULTS["model"]["head"]))
    modules = set(module_section_names(_plugins(src)))
    methods = _method_sections() - modules
    out: dict[str, Any] = {}
    for key, value in src.items():
        if key == "model":
            out["model"] = model
        elif key not in methods:
            out[key] = value  # core keys, module sections; unknown keys: the parser names them
    section = head_section(head) if head in method_names("head") else None
    params = dict(src.get(section) or {}) if section else {}
    for owner, switch, keys in _IN_HEAD_SECTION.values():
        if owner == section:
            for key in (switch, *keys):
                params.pop(key, None)
    out[HEAD_KEY] = {"name": head, **params}
    chosen = _old_selection(src, head)
    out[OBJECTIVES_KEY] = [{"name": n, **_old_params(src, n)} for n in chosen]
    held = {}
    for name in method_names("objective"):
        if name in chosen:
            continue
        defaults = dataclasses.asdict(section_class(objective_section(name))())
        changed = {k: v for k, v in _old_params(src, name).items() if defaults.get(k) != v}
        if changed:
            held[name] = changed
    if held:
        out[OBJECTIVE_DEFAULTS_KEY] = held
    return out


def alias_override(key: list[str]) -> list[str]:
    """Translate an old dotted override key to the canonical one (others unchanged).

    ``model.head`` -> ``head.name``; ``<objective>.enable`` -> ``objectives.<objective>``;
    ``<objective>.<key>`` -> ``objectives.<objective>.<key>``; ``tcmgc.sdr`` ->
    ``objectives.sdr``; ``tcmgc.sdr_weight`` -> ``objectives.sdr.weight``;
    ``gare.regularize`` -> ``objectives.gare_reg``; ``gare.beta`` ->
    ``objectives.gare_reg.beta``; ``<head section>.<key>`` -> ``head.<key>``. The keys of a
    head's section (its own, and those of its objectives) come back as ``@head.<section>.``
    + the canonical key: they act only while the head is that one, and are ignored otherwise,
    as they had no effect before.
    """
    if key[:2] == ["model", "head"]:
        return [HEAD_KEY, "name", *key[2:]]
    first = key[0]
    if first in (HEAD_KEY, OBJECTIVES_KEY, OBJECTIVE_DEFAULTS_KEY) or len(key) < 2:
        return list(key)
    for objective, (section, switch, keys) in _IN_HEAD_SECTION.items():
        if first == section and key[1] == switch:
            return [HEAD_SECTION, section, OBJECTIVES_KEY, objective, *key[2:]]
        if first == section and key[1] in keys:
            return [HEAD_SECTION, section, OBJECTIVES_KEY, objective, keys[key[1]], *key[2:]]
    objectives = {objective_section(n): n for n in method_names("objective")
                  if n not in _IN_HEAD_SECTION}
    if first in objectives:
        if key[1:] == [_SWITCH]:
            return [OBJECTIVES_KEY, objectives[first]]
        return [OBJECTIVES_KEY, objectives[first], *key[1:]]
    heads = {head_section(n) for n in method_names("head")} - {None}
    if first in heads and first not in module_section_names():
        return [HEAD_SECTION, first, HEAD_KEY, *key[1:]]
    return list(key)


def _entry(value: Any, text: str) -> dict[str, Any]:
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, Mapping) and "name" in value:
        return dict(value)
    raise ConfigError(f"{text}: expected objective names or mappings with 'name', "
                      f"got {value!r}")


def _nest(parts: list[str], value: Any) -> Any:
    for part in reversed(parts):
        value = {part: value}
    return value


def is_registered(kind: str, name: str, text: str) -> None:
    if name not in method_names(kind):
        raise ConfigError(f"{text}: unknown {kind} {name!r}; registered: "
                          f"{', '.join(method_names(kind))}")


def apply_canonical_overrides(data: Mapping[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted overrides, old or canonical, to a canonical-shape config dict.

    ``head.name=X`` picks head X (its settings start at X's defaults; objectives owned by the
    previous head leave and those X declares in ``with_objectives`` join, as choosing
    ``model.head`` did); ``head.<key>=v`` sets a head setting; ``objectives.N=true|false``
    adds / removes objective N (adding one that replaces another, e.g. negnce, removes it);
    ``objectives.N.<key>=v`` sets a setting of N, or, when N is not listed, holds it in
    ``objective_defaults`` for when N is added (it does not add N: the old ``drgi.weight=0.1``
    did not enable DRGI); ``objectives=[...]`` replaces the list; anything else merges as a
    plain key. Head choices apply first (the old keys did not depend on their order).
    """
    out = copy.deepcopy(dict(data))
    parsed = []
    for text in overrides:
        parts, value = parse_override(text)
        parsed.append((alias_override(parts), value, f"config key {'.'.join(parts)!r} in "
                                                     f"override {text!r}"))
    parsed.sort(key=lambda p: p[0][:2] != [HEAD_KEY, "name"])  # stable: head choices first
    for key, value, text in parsed:
        if key[0] == HEAD_SECTION:
            head_name = (out.get(HEAD_KEY) or {}).get("name", _OLD_DEFAULTS["model"]["head"])
            if head_section(head_name) != key[1]:
                continue  # another head's setting: no effect, as before
            key = key[2:]
        if key[0] not in (HEAD_KEY, OBJECTIVES_KEY):
            out = merge_dicts(out, _nest(key, value))
            continue
        head = dict(out.get(HEAD_KEY) or {"name": _OLD_DEFAULTS["model"]["head"]})
        objectives = [_entry(e, text) for e in out.get(OBJECTIVES_KEY, ["infonce"])]
        held = {k: dict(v) for k, v in (out.get(OBJECTIVE_DEFAULTS_KEY) or {}).items()}
        listed = key[0] == OBJECTIVES_KEY or key == [HEAD_KEY, "name"]  # the list changes
        if key == [HEAD_KEY, "name"]:
            if not isinstance(value, str):
                raise ConfigError(f"{text}: expected a string, got {value!r}")
            is_registered("head", value, text)
            if value != head.get("name"):
                head = {"name": value}
                objectives = [e for e in objectives
                              if method("objective", e["name"]).owner_head in (None, value)]
                for name in method("head", value).with_objectives:
                    _add(objectives, held, name)
        elif key[0] == HEAD_KEY:
            head = merge_dicts(head, _nest(key[1:], value))
        elif key == [OBJECTIVES_KEY]:
            if not isinstance(value, list):
                raise ConfigError(f"{text}: expected a list of objectives, got {value!r}")
            objectives = [_entry(v, text) for v in value]
        elif len(key) == 2:
            is_registered("objective", key[1], text)
            if value is True:
                _add(objectives, held, key[1])
            elif value is False:
                objectives = [e for e in objectives if e["name"] != key[1]]
            else:
                raise ConfigError(f"{text}: expected true (add the objective) or false "
                                  f"(remove it), got {value!r}")
        else:
            is_registered("objective", key[1], text)
            entry = next((e for e in objectives if e["name"] == key[1]), None)
            if entry is not None:
                entry.update(merge_dicts(entry, _nest(key[2:], value)))
            else:
                listed = False  # held for when it is added: the list is unchanged
                held[key[1]] = merge_dicts(held.get(key[1], {}), _nest(key[2:], value))
                objective_spec(key[1], held[key[1]], OBJECTIVES_KEY, text.split(" in ", 1)[1])
        if key[0] == HEAD_KEY or HEAD_KEY in out:  # no head written into a layer lacking one
            out[HEAD_KEY] = head
        if listed or OBJECTIVES_KEY in out:
            out[OBJECTIVES_KEY] = objectives
        if held:
            out[OBJECTIVE_DEFAULTS_KEY] = held
    return out


def _add(objectives: list[dict[str, Any]], held: dict[str, Any], name: str) -> None:
    """Add objective ``name`` unless listed (with its held settings); one it replaces leaves."""
    if any(e["name"] == name for e in objectives):
        return
    replaced = method("objective", name).replaces
    objectives[:] = [e for e in objectives if e["name"] != replaced]
    objectives.append({"name": name, **held.get(name, {})})
