"""Experiment configuration: nested dataclasses <- YAML <- dotted CLI overrides.

Loading is strict: an unknown key or a value of the wrong type raises :class:`ConfigError`
naming the dotted key, the file it came from and what was expected.

Configs compose: a file may overlay others with a top-level ``include:`` (a dataset/recipe base,
then a small per-method overlay); see :func:`config_layers`.

Example:
    >>> cfg = load_config("configs/synthvtt/seqtransf.yaml", ["train.epochs=3", "drgi.enable=true"])
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key or value that does not fit the schema."""


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    dataset: str = "synthvtt"  # source registry name (msrvtt, msvd, lsmdc, activitynet, ...)
    root: str = "data/synthvtt"  # dataset root folder (annotations + videos)
    train_split: str = "train"  # split used for training
    eval_split: str = "test"  # split used by evaluation after training
    num_frames: int = 12  # frames sampled uniformly per clip (T)
    image_size: int = 224  # frames are resized (short side) and centre-cropped to this
    max_words: int = 32  # text length in tokens incl. SOT/EOT and padding (L)
    on_decode_error: str = "raise"  # raise | skip: what a corrupt video does to the run
    frame_cache: str = ""  # folder for the on-disk cache of sampled frames ("" = off)
    # auto | seek | decode (the frames at the segment centres, identical in all three) |
    # keyframe (the keyframe nearest each centre within its segment: faster, times recorded)
    frame_sampling: str = "auto"
    decode_threads: str = ""  # FFmpeg decoder threads: AUTO | FRAME | SLICE | NONE ("" = per mode)
    num_workers: int = 0  # DataLoader workers
    source_options: dict[str, Any] = field(default_factory=dict)  # passed to the source parser


@dataclass
class ClipConfig:
    """Size of a from-scratch Hugging Face CLIP (used when ``model.pretrained`` is empty)."""

    embed_dim: int = 512  # joint projection dim (D)
    text_width: int = 512  # text transformer hidden size
    text_layers: int = 12  # text transformer depth
    text_heads: int = 8  # text attention heads
    vision_width: int = 768  # vision transformer hidden size
    vision_layers: int = 12  # vision transformer depth
    vision_heads: int = 12  # vision attention heads
    patch_size: int = 32  # ViT patch size
    vocab_size: int = 49408  # text vocabulary (overridden by the run's tokenizer)
    max_positions: int = 77  # text positions


@dataclass
class ModelConfig:
    encoder: str = "hf_clip"  # encoder registry name
    pretrained: str = ""  # HF CLIP folder or hub id, an OpenAI .pt, a CLIP4Clip .bin, or a run dir
    # tokenizer folder, hub id, or OpenAI's bpe_simple_vocab_16e6.txt.gz (converted once into the
    # run's tokenizer/); "" = the pretrained model's own
    tokenizer: str = ""
    clip: ClipConfig = field(default_factory=ClipConfig)  # architecture when built from scratch
    head: str = "seqtransf"  # similarity head registry name
    init_logit_scale: float = 4.6052  # ln(100), CLIP's starting inverse temperature
    max_logit_scale: float = 4.6052  # logit_scale is clamped to this after every step
    freeze_backbone: bool = False  # train only new modules (heads, objectives)
    freeze_vision: bool = False  # keep the (pretrained) vision tower fixed; the text tower trains
    # With freeze_vision: still train the last k vision blocks (+ post-layernorm and projection)
    train_vision_layers: int = 0


@dataclass
class TrainConfig:
    epochs: int = 5  # passes over the training pairs
    batch_size: int = 128  # global batch (split across ranks)
    optim: str = "adamw"  # adamw | bertadam_legacy
    lr: float = 1e-4  # learning rate of new modules (heads, objectives, temporal modules)
    clip_lr: float = 1e-6  # learning rate of the backbone
    weight_decay: float = 0.2  # decoupled; biases and norms are exempt
    betas: tuple[float, float] = (0.9, 0.98)  # Adam betas
    eps: float = 1e-6  # Adam epsilon
    warmup: float = 0.1  # warm-up fraction of total steps, then cosine
    grad_clip: float = 1.0  # global grad-norm clip (0 = off)
    amp: str = "auto"  # auto (bf16/fp16 on CUDA) | off
    seed: int = 0  # seeds python, numpy and torch
    log_every: int = 10  # steps between JSONL log lines
    eval_after: bool = True  # evaluate eval_split after the last epoch
    max_steps: int = 0  # stop after this many optimiser steps (0 = full schedule)
    device: str = "auto"  # auto | cpu | cuda
    # With a frozen vision tower: encode each training video once and train from the cached
    # frame features (tvr/models/frozen_video.py); same result, no per-step decoding.
    cache_video_features: bool = False
    val_split: str = ""  # split evaluated during training ("" = none), e.g. val
    val_every: int = 1  # epochs between val evaluations (the last epoch is always evaluated)
    select: str = "last"  # last | best_val: which epoch's weights the run keeps as model.safetensors
    select_metric: str = "t2v/R@1"  # val metric that best_val maximises (MdR/MnR are minimised)


SECTION_KIND = "section"  # registry kind of method config sections
_CORE_ORDER = ("name", "output_root", "plugins", "data", "model")  # to_dict: these, sections, train


def section_names(plugins: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Names of the registered sections a config holds: the built-in ones (registered by
    ``tvr``) and those registered by the modules in ``plugins``."""
    from tvr.registry import names

    return [name for name in names(SECTION_KIND) if _owner(name) in ("tvr", *plugins)]


def _owner(name: str) -> str:
    """"tvr" for a built-in section, else the plug-in module that registered it."""
    module = section_class(name).__module__
    return "tvr" if module.split(".")[0] == "tvr" else module


def section_class(name: str) -> type:
    """The dataclass registered for section ``name`` (RegistryError lists the choices)."""
    from tvr.registry import get

    return get(SECTION_KIND, name)


def section_names_all() -> list[str]:
    """Every registered section name, whatever registered it."""
    from tvr.registry import names

    return names(SECTION_KIND)


def _default_sections() -> dict[str, Any]:
    return {name: section_class(name)() for name in section_names()}  # plug-ins: __post_init__


@dataclass
class ExperimentConfig:
    """The whole experiment: run identity, data, backbone, training, and the method sections.

    Method sections (``seqtransf``, ``wti``, ``drgi``, ...) are not fields of this class: each
    method registers its section dataclass beside its code with ``@register("section", name)``
    and the config holds one instance per registered section, read and replaced as attributes
    (``cfg.drgi.weight``, ``cfg.drgi = ...``) and written as top-level keys.
    """

    name: str = "run"  # run name; the run folder is output_root/name
    output_root: str = "checkpoints"  # where run folders are created
    # modules imported before the config is built: plug-in methods registering their head,
    # objective and section (e.g. "tests.plugins.toy"); kept in the run's config.json
    plugins: list[str] = field(default_factory=list)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # one instance per registered section, by name (read through attribute access)
    sections: dict[str, Any] = field(default_factory=_default_sections)

    def __post_init__(self) -> None:
        # own mapping (dataclasses.replace passes the old one), holding the plug-ins' sections too
        object.__setattr__(self, "sections", dict(self.sections))
        for name in section_names(self.plugins):
            if name not in self.sections:  # a plug-in's section, at its defaults
                self.sections[name] = section_class(name)()

    def __getattr__(self, name: str) -> Any:  # only for names that are not fields
        sections = self.__dict__.get("sections")
        if sections is not None and name in sections:
            return sections[name]
        raise AttributeError(
            f"{type(self).__name__} has no field or registered config section {name!r}"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        sections = self.__dict__.get("sections")
        if sections is not None and name in sections:
            sections[name] = value
        else:
            object.__setattr__(self, name, value)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_root) / self.name


# --------------------------------------------------------------------------------------------
# Strict conversion
# --------------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, origin: str) -> Any:
    """Check/convert ``value`` to the annotated type ``tp``; raise ConfigError naming ``key``."""
    where = f" in {origin}" if origin else ""
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r}{where}: expected a mapping, got {value!r}")
        return _build(tp, value, key, origin)
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
                return _coerce(value, arg, key, origin)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            f"config key {key!r}{where}: expected {_type_name(tp)}, got {value!r}"
        )
    if org is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(
                f"config key {key!r}{where}: expected a list of {len(args)} values, got {value!r}"
            )
        return tuple(_coerce(v, a, f"{key}[{i}]", origin) for i, (v, a) in enumerate(zip(value, args)))
    if org is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key {key!r}{where}: expected a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]", origin) for i, v in enumerate(value)]
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
    raise ConfigError(f"config key {key!r}{where}: unsupported type {_type_name(tp)}")


def _build(cls: type[T], data: dict[str, Any], prefix: str, origin: str) -> T:
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
        kwargs[k] = _coerce(v, hints[k], key, origin)
    return cls(**kwargs)


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


def _build_experiment(data: dict[str, Any], origin: str, trusted: bool) -> ExperimentConfig:
    """:class:`ExperimentConfig` from a nested dict: core fields, then registered sections."""
    plugins = _coerce(data.get("plugins", []), list[str], "plugins", origin)
    import_plugins(plugins, origin, trusted=trusted)
    sections = section_names(plugins)
    core: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for key, value in data.items():
        if key in _CORE_ORDER or key == "train":
            core[key] = value
        elif key in sections:
            own[key] = _coerce(value, section_class(key), key, origin)
        else:
            where = f" in {origin}" if origin else ""
            known = sorted([*_CORE_ORDER, "train", *sections])
            hint = ""
            if key in section_names_all():
                hint = f" (plug-in module {_owner(key)!r} registers it: list it under plugins)"
            raise ConfigError(
                f"unknown config key {key!r}{where}{hint}; known keys here: {', '.join(known)}"
            )
    cfg = _build(ExperimentConfig, core, "", origin)
    cfg.sections.update(own)
    return cfg


def from_dict(data: dict[str, Any], cls: type[T] = ExperimentConfig, origin: str = "",  # type: ignore[assignment]
              *, trusted_plugins: bool = False) -> T:
    """Build ``cls`` from a nested dict, strictly (unknown keys and wrong types raise).

    For :class:`ExperimentConfig` the ``plugins`` are imported first (see
    :func:`import_plugins`; ``trusted_plugins`` for a recipe the user runs), and every other
    top-level key must be a core field or a registered section.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{origin or 'config'}: expected a mapping at the top level, got {data!r}")
    if cls is ExperimentConfig:
        return _build_experiment(data, origin, trusted_plugins)  # type: ignore[return-value]
    return _build(cls, data, "", origin)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain JSON-able nested dicts (tuples become lists).

    An :class:`ExperimentConfig` is written flat: core fields, its sections by name, ``train``
    (``plugins`` only when there are any, so runs without plug-ins keep today's keys).
    """
    if not isinstance(cfg, ExperimentConfig):
        return json.loads(json.dumps(dataclasses.asdict(cfg)))
    out: dict[str, Any] = {}
    for key in _CORE_ORDER:
        if key != "plugins" or cfg.plugins:
            value = getattr(cfg, key)
            out[key] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    for name in sorted(cfg.sections):
        out[name] = dataclasses.asdict(cfg.sections[name])
    out["train"] = dataclasses.asdict(cfg.train)
    return json.loads(json.dumps(out))


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
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
    """Return ``data`` with each ``key.sub=value`` override merged in."""
    out = dict(data)
    for text in overrides:
        parts, value = parse_override(text)
        nested: Any = value
        for part in reversed(parts):
            nested = {part: nested}
        out = _merge(out, nested)
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
    unknown key or a wrong type names the file that holds it.

    Raises:
        ConfigError: unknown key, wrong type, unreadable file; the message names the key and file.
    """
    data: dict[str, Any] = {}
    origin = ""
    if path is not None:
        layers = config_layers(path)
        for file, layer in layers:
            from_dict(layer, ExperimentConfig, file, trusted_plugins=True)  # strict, names file
            data = _merge(data, layer)
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
