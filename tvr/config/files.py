"""Config files and overrides: YAML layers composed with ``include:``, dotted overrides, and
loading / saving a run's ``config.json``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tvr.config.convert import from_dict, to_dict
from tvr.config.schema import HEAD_KEY, ConfigError, ExperimentConfig


def merge_dicts(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_dicts(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value`` into (["a","b","c"], value); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected the form key.sub=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from None
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return the canonical-shape ``data`` with each ``key.sub=value`` override applied.

    Besides plain keys (``train.lr=1e-4``, ``seqtransf.layers=2``): ``head.name=wti`` picks the
    head, ``head.<key>=v`` sets one of its settings, ``objectives.<name>=true|false`` adds or
    removes an objective, ``objectives.<name>.<key>=v`` sets one of its settings (held for when
    it is added if it is not listed), ``objectives=[...]`` replaces the list. The old keys
    (``model.head=wti``, ``drgi.enable=true``, ``drgi.weight=0.1``, ``tcmgc.sdr=false``, ...)
    still work: :func:`tvr.config.migrate.apply_canonical_overrides` translates them.
    """
    from tvr.config.migrate import apply_canonical_overrides

    return apply_canonical_overrides(data, overrides)


def merge_layers(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """``layer`` over ``base`` (canonical shape): mappings merge key by key, lists (e.g.
    ``objectives``) and other values replace; a layer naming another head replaces the head."""
    out = merge_dicts(base, layer)
    head = layer.get(HEAD_KEY)
    if isinstance(head, Mapping) and isinstance(base.get(HEAD_KEY), Mapping) and (
            head.get("name", base[HEAD_KEY].get("name")) != base[HEAD_KEY].get("name")):
        out[HEAD_KEY] = dict(head)
    return out


INCLUDE_KEY = "include"  # top-level key of a config file: the file(s) it overlays


def _read_mapping(path: Path, included_from: Path | None) -> dict[str, Any]:
    """One YAML/JSON file as a dict (empty file -> {})."""
    via = f" (included from {included_from})" if included_from is not None else ""
    if not path.is_file():
        raise ConfigError(f"config file {path}{via} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}{via} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path}{via}: expected a mapping at the top level")
    return loaded


def config_layers(
    path: str | Path, _chain: tuple[Path, ...] = ()
) -> list[tuple[str, dict[str, Any]]]:
    """The files a config file is composed of, base first: ``[(file, its keys), ...]``.

    A file may name the files it overlays under the top-level key ``include`` (a path or a
    list of paths, relative to the file's folder); their keys are merged first, in order, then
    the file's own (mappings merge key by key, any other value replaces). Includes nest; a cycle
    is an error.

    Raises:
        ConfigError: a missing or unreadable file, a bad ``include`` value, or a cycle.
    """
    p = Path(path)
    data = _read_mapping(p, _chain[-1] if _chain else None)
    includes = data.pop(INCLUDE_KEY, [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) and i for i in includes):
        raise ConfigError(
            f"config key {INCLUDE_KEY!r} in {p}: expected a file name or a list of file names, "
            f"got {includes!r}"
        )
    layers: list[tuple[str, dict[str, Any]]] = []
    chain = (*_chain, p.resolve())
    for name in includes:
        target = p.parent / name
        if target.resolve() in chain:
            raise ConfigError(
                f"config file {p} includes {target}, which includes it back: "
                + " -> ".join(str(c) for c in (*chain, target.resolve()))
            )
        layers += config_layers(target, chain)
    layers.append((str(p), data))
    return layers


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load an :class:`ExperimentConfig` from YAML (or JSON), its includes, and dotted overrides.

    Every file of the composition (:func:`config_layers`) is checked on its own first, so an
    unknown key or a wrong type names the file that holds it. Files in the old shape (a run's
    ``config.json`` from before ``head``/``objectives``) are merged, then migrated; mixing old-
    and new-shape files in one composition is an error.

    Raises:
        ConfigError: unknown key, wrong type, unreadable file; the message names the key and file.
    """
    from tvr.config.migrate import is_new_shape, is_old_shape, migrate

    data: dict[str, Any] = {}
    origin = ""
    if path is not None:
        layers = config_layers(path)
        old = [file for file, layer in layers if is_old_shape(layer)]
        new = [file for file, layer in layers if is_new_shape(layer)]
        if old and new:
            raise ConfigError(
                f"config files {', '.join(old)} use the old shape (model.head, <method>.enable) "
                f"and {', '.join(new)} the new one (head, objectives): convert the old ones "
                "(docs/adding-a-method.md, 'Config shape')")
        for file, layer in layers:
            from_dict(layer, ExperimentConfig, file, trusted_plugins=True, complete=False)
            data = merge_dicts(data, layer) if old else merge_layers(data, layer)
        if old:
            data = migrate(data)
        origin = str(path)
        if len(layers) > 1:
            origin += " (with " + ", ".join(file for file, _ in layers[:-1]) + ")"
    if overrides:
        data = apply_overrides(data, overrides)
        origin = f"{origin} + overrides" if origin else "overrides"
    return from_dict(data, ExperimentConfig, origin, trusted_plugins=True)


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    """Write the resolved config as JSON, atomically."""
    from tvr.io import atomic_write_text

    atomic_write_text(Path(path), json.dumps(to_dict(cfg), indent=2) + "\n")
