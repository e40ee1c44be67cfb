"""Experiment configuration: nested dataclasses <- YAML <- dotted CLI overrides.

Loading is strict: an unknown key or a value of the wrong type raises :class:`ConfigError`
naming the dotted key, the file it came from and what was expected.

Configs compose: a file may overlay others with a top-level ``include:`` (a dataset/recipe base,
then a small per-method overlay); see :func:`config_layers`.

The methods: ``head: {name, ...its settings}`` and ``objectives: [{name, weight, ...}, ...]``
(docs/adding-a-method.md, "Config shape"); the earlier shape (``model.head`` and one section per
method with ``enable`` switches) and its override keys are converted by
:mod:`tvr.config_migrate`.

Example:
    >>> cfg = load_config("configs/synthvtt/seqtransf.yaml", ["train.epochs=3", "objectives.drgi=true"])
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


@dataclass(slots=True)  # slots: a misspelt or removed key (model.head) fails loudly
class ModelConfig:
    encoder: str = "hf_clip"  # encoder registry name
    pretrained: str = ""  # HF CLIP folder or hub id, an OpenAI .pt, a CLIP4Clip .bin, or a run dir
    # tokenizer folder, hub id, or OpenAI's bpe_simple_vocab_16e6.txt.gz (converted once into the
    # run's tokenizer/); "" = the pretrained model's own
    tokenizer: str = ""
    clip: ClipConfig = field(default_factory=ClipConfig)  # architecture when built from scratch
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
# to_dict order: these, head, objectives, module sections, train
_CORE_ORDER = ("name", "output_root", "plugins", "data", "model")
HEAD_KEY, OBJECTIVES_KEY, OBJECTIVE_DEFAULTS_KEY = "head", "objectives", "objective_defaults"


def section_class(name: str) -> type:
    """The dataclass registered for section ``name`` (RegistryError lists the choices)."""
    from tvr.registry import get

    return get(SECTION_KIND, name)


def _owner(name: str) -> str:
    """"tvr" for a built-in section, else the plug-in module that registered it."""
    module = section_class(name).__module__
    return "tvr" if module.split(".")[0] == "tvr" else module


def section_names_all() -> list[str]:
    """Every registered section name, whatever registered it."""
    from tvr.registry import names

    return names(SECTION_KIND)


def head_section(head: str) -> str | None:
    """The section holding head ``head``'s settings (None: it has none)."""
    from tvr.registry import get

    return get("head", head).section


def objective_section(objective: str) -> str:
    """The section holding objective ``objective``'s settings (one with a ``weight`` field)."""
    from tvr.registry import get

    return get("objective", objective).section


def module_section_names(plugins: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Registered sections owned by no head and no objective (e.g. ``seqtransf``, the temporal
    module several heads share): top-level keys of the config, built-in or from ``plugins``."""
    from tvr.registry import names

    owned = {head_section(n) for n in names("head")} | {
        objective_section(n) for n in names("objective")}
    return [n for n in section_names_all() if n not in owned and _owner(n) in ("tvr", *plugins)]


@dataclass
class HeadSpec:
    """The similarity head: its registry name and its settings (its section's dataclass, or
    None for a head without settings). Written as ``head: {name: wti, arch: 2, ...}``."""

    name: str = "seqtransf"
    params: Any = None


@dataclass
class ObjectiveSpec:
    """One training objective: its registry name and its settings (its section's dataclass,
    which holds the loss ``weight``). Written as ``{name: drgi, weight: 0.1, ...}``."""

    name: str
    params: Any

    @property
    def weight(self) -> float:
        return float(self.params.weight)


def head_spec(name: str, params: Mapping[str, Any] | None = None, key: str = HEAD_KEY,
              origin: str = "") -> HeadSpec:
    """A :class:`HeadSpec` for head ``name`` with ``params`` over its section's defaults.

    Raises:
        ConfigError: unknown head (listing the registered ones), or a setting it lacks.
    """
    section = _registered("head", name, f"{key}.name", origin) and head_section(name)
    if section is None:
        if params:
            raise ConfigError(
                f"config key {key!r}{_where(origin)}: head {name!r} has no settings, got "
                f"{', '.join(sorted(params))}")
        return HeadSpec(name, None)
    return HeadSpec(name, _build(section_class(section), dict(params or {}), key, origin))


def objective_spec(name: str, params: Mapping[str, Any] | None = None,
                   key: str = OBJECTIVES_KEY, origin: str = "") -> ObjectiveSpec:
    """An :class:`ObjectiveSpec` for objective ``name`` with ``params`` over its defaults.

    Raises:
        ConfigError: unknown objective (listing the registered ones), or a setting it lacks.
    """
    _registered("objective", name, f"{key}.name", origin)
    return ObjectiveSpec(name, _build(section_class(objective_section(name)),
                                      dict(params or {}), f"{key}.{name}", origin))


def _registered(kind: str, name: Any, key: str, origin: str) -> bool:
    from tvr.registry import names

    choices = names(kind)
    if not isinstance(name, str) or name not in choices:
        raise ConfigError(f"config key {key!r}{_where(origin)}: unknown {kind} {name!r}; "
                          f"registered: {', '.join(choices)}")
    return True


def _default_objectives() -> list[ObjectiveSpec]:
    return [objective_spec("infonce")]


def _default_modules() -> dict[str, Any]:
    return {name: section_class(name)() for name in module_section_names()}


@dataclass
class ExperimentConfig:
    """The whole experiment: run identity, data, backbone, the head, the objectives, training.

    ``head`` and ``objectives`` name registered methods with their settings (each method
    registers its settings dataclass beside its code with ``@register("section", name)``); the
    list of objectives is what the model is built with, in construction order. Sections owned
    by no method (the temporal module ``seqtransf``) are held in ``modules``. Every section in
    use reads as an attribute: ``cfg.seqtransf.layers``, ``cfg.wti.arch`` (the head's),
    ``cfg.drgi.weight`` (an objective's; AttributeError when DRGI is not in the list).
    """

    name: str = "run"  # run name; the run folder is output_root/name
    output_root: str = "checkpoints"  # where run folders are created
    # modules imported before the config is built: plug-in methods registering their head,
    # objective and section (e.g. "tests.plugins.toy"); kept in the run's config.json
    plugins: list[str] = field(default_factory=list)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    head: HeadSpec = field(default_factory=HeadSpec)
    objectives: list[ObjectiveSpec] = field(default_factory=_default_objectives)
    train: TrainConfig = field(default_factory=TrainConfig)
    # settings of the sections owned by no head or objective, by name (e.g. seqtransf)
    modules: dict[str, Any] = field(default_factory=_default_modules)

    def __post_init__(self) -> None:
        self.modules = dict(self.modules)  # own mapping (dataclasses.replace passes the old one)
        for name in module_section_names(self.plugins):
            if name not in self.modules:  # a plug-in's module section, at its defaults
                self.modules[name] = section_class(name)()

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    def objective(self, name: str) -> ObjectiveSpec | None:
        """The objective ``name`` of the list (None when it is not trained)."""
        return next((o for o in self.objectives if o.name == name), None)

    def settings(self, name: str) -> Any:
        """Section ``name``'s settings: in use (the head's, an objective's, a module's), else
        the section's defaults (a fresh instance: changing it changes nothing)."""
        try:
            return getattr(self, name)
        except AttributeError:
            return section_class(name)()

    def add_objective(self, name: str, **params: Any) -> ObjectiveSpec:
        """Add objective ``name`` (settings over its defaults) at its place in the order; one
        it replaces leaves. Returns its spec (existing settings are updated)."""
        spec = self.objective(name)
        if spec is None:
            spec = objective_spec(name, params)
            self.objectives = order_objectives([*self.objectives, spec], self.head.name,
                                               replace=True)
        else:
            spec.params = dataclasses.replace(spec.params, **params)
        return spec

    def remove_objective(self, name: str) -> None:
        self.objectives = [o for o in self.objectives if o.name != name]

    def set_head(self, name: str, **params: Any) -> HeadSpec:
        """Choose head ``name`` (settings over its defaults), as ``head.name=<name>`` does:
        objectives owned by the previous head leave, those the head brings
        (``with_objectives``) join."""
        from tvr.registry import get

        if name != self.head.name:
            self.head = head_spec(name, params)
            self.objectives = [o for o in self.objectives
                               if get("objective", o.name).owner_head in (None, name)]
            for objective in get("head", name).with_objectives:
                self.add_objective(objective)
        elif params:
            self.head.params = dataclasses.replace(self.head.params, **params)
        return self.head

    def __getattr__(self, name: str) -> Any:  # only for names that are not fields
        d = self.__dict__
        if name in d.get("modules", {}):
            return d["modules"][name]
        head = d.get("head")
        if head is not None and head.params is not None and name == _section_of(head.params):
            return head.params
        for spec in d.get("objectives", ()):
            if name == objective_section(spec.name):
                return spec.params
        if name in section_names_all():
            where = "objective" if name in _objective_sections() else "head"
            raise AttributeError(
                f"config section {name!r} is not in use: its {where} is not in this config "
                f"(head {head.name if head else '?'!r}, objectives "
                f"{[o.name for o in d.get('objectives', ())]}); use cfg.settings({name!r}) for "
                "its defaults" + (f" or cfg.add_objective({name!r})" if where == "objective" else "")
            )
        raise AttributeError(
            f"{type(self).__name__} has no field or registered config section {name!r}"
        )

    @property
    def run_dir(self) -> Path:
        return Path(self.output_root) / self.name


def _section_of(params: Any) -> str | None:
    """The registered section name of a settings instance."""
    from tvr.registry import names

    return next((n for n in names(SECTION_KIND) if type(params) is section_class(n)), None)


def _objective_sections() -> set[str]:
    from tvr.registry import names

    return {objective_section(n) for n in names("objective")}


def order_objectives(specs: list[ObjectiveSpec], head: str, origin: str = "",
                     replace: bool = False) -> list[ObjectiveSpec]:
    """The objectives in construction order (each class's ``order``, then name), checked.

    Raises:
        ConfigError: an objective listed twice, one listed with the objective it replaces
            (unless ``replace``: then the replaced one leaves), or one owned by another head.
    """
    from tvr.registry import get

    where = _where(origin)
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ConfigError(f"config key 'objectives'{where}: {spec.name!r} is listed twice")
        seen.add(spec.name)
    out = []
    for spec in specs:
        cls = get("objective", spec.name)
        if cls.owner_head is not None and cls.owner_head != head:
            raise ConfigError(
                f"config key 'objectives'{where}: {spec.name!r} trains only with head "
                f"{cls.owner_head!r}, but the head is {head!r}")
        if cls.replaces in seen and not replace:
            raise ConfigError(f"config key 'objectives'{where}: {spec.name!r} replaces "
                              f"{cls.replaces!r}; list one of them")
        out.append(spec)
    dropped = {get("objective", s.name).replaces for s in out} if replace else set()
    out = [s for s in out if s.name not in dropped]
    return sorted(out, key=lambda s: (get("objective", s.name).order, s.name))


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


def _where(origin: str) -> str:
    return f" in {origin}" if origin else ""


def _parse_head(value: Any, origin: str) -> HeadSpec:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping) or "name" not in value:
        raise ConfigError(f"config key {HEAD_KEY!r}{_where(origin)}: expected a mapping with "
                          f"'name' (a registered head) and its settings, got {value!r}")
    params = {k: v for k, v in value.items() if k != "name"}
    return head_spec(value["name"], params, HEAD_KEY, origin)


def _parse_objectives(value: Any, held: Mapping[str, Any], origin: str) -> list[ObjectiveSpec]:
    if not isinstance(value, list):
        raise ConfigError(f"config key {OBJECTIVES_KEY!r}{_where(origin)}: expected a list of "
                          f"objectives (names or mappings with 'name'), got {value!r}")
    specs = []
    for i, entry in enumerate(value):
        key = f"{OBJECTIVES_KEY}[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise ConfigError(f"config key {key!r}{_where(origin)}: expected an objective name "
                              f"or a mapping with 'name' and its settings, got {entry!r}")
        name = entry["name"]
        _registered("objective", name, f"{key}.name", origin)
        params = {**held.get(name, {}), **{k: v for k, v in entry.items() if k != "name"}}
        specs.append(objective_spec(name, params, OBJECTIVES_KEY, origin))
    return specs


def _parse_held(value: Any, origin: str) -> dict[str, dict[str, Any]]:
    """``objective_defaults``: per objective, settings it starts from when listed or added."""
    key = OBJECTIVE_DEFAULTS_KEY
    if not isinstance(value, Mapping):
        raise ConfigError(f"config key {key!r}{_where(origin)}: expected a mapping of "
                          f"objective name to settings, got {value!r}")
    for name, params in value.items():
        _registered("objective", name, f"{key}.{name}", origin)
        if not isinstance(params, Mapping):
            raise ConfigError(f"config key '{key}.{name}'{_where(origin)}: expected a mapping, "
                              f"got {params!r}")
        objective_spec(name, params, key, origin)  # strict: known keys, right types
    return {str(k): dict(v) for k, v in value.items()}


def _build_experiment(data: dict[str, Any], origin: str, trusted: bool,
                      complete: bool = True) -> ExperimentConfig:
    """:class:`ExperimentConfig` from a nested dict: core fields, head, objectives, modules.

    An old-shape dict (``model.head`` and one section per method with ``enable`` switches) is
    converted first (:func:`tvr.config_migrate.migrate`). ``complete``: check the objectives
    against each other and the head (False for one layer of a composed file).
    """
    from tvr.config_migrate import is_old_shape, migrate

    plugins = _coerce(data.get("plugins", []), list[str], "plugins", origin)
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
        if key in _CORE_ORDER or key == "train":
            core[key] = value
        elif key == HEAD_KEY:
            head = _parse_head(value, origin)
        elif key == OBJECTIVES_KEY:
            objectives = _parse_objectives(value, held, origin)
        elif key == OBJECTIVE_DEFAULTS_KEY:
            continue
        elif key in modules:
            own[key] = _coerce(value, section_class(key), key, origin)
        else:
            known = sorted([*_CORE_ORDER, "train", HEAD_KEY, OBJECTIVES_KEY,
                            OBJECTIVE_DEFAULTS_KEY, *modules])
            hint = ""
            if key in section_names_all():
                if key in _objective_sections() or key in {head_section(h) for h in _heads()}:
                    hint = (f" ({key!r} belongs to a method: set it under 'head' or "
                            f"'objectives', e.g. objectives.{key}.<key>=... or head.<key>=...)")
                else:
                    hint = f" (plug-in module {_owner(key)!r} registers it: list it under plugins)"
            raise ConfigError(
                f"unknown config key {key!r}{_where(origin)}{hint}; known keys here: "
                f"{', '.join(known)}"
            )
    if objectives is None:
        objectives = [objective_spec("infonce", held.get("infonce"), OBJECTIVES_KEY, origin)]
    if complete:
        objectives = order_objectives(objectives, head.name, origin)
        for kind, name, key in (("head", head.name, "head.name"),
                                *(("objective", o.name, OBJECTIVES_KEY) for o in objectives)):
            _check_plugin_listed(kind, name, key, plugins, origin)
    cfg = _build(ExperimentConfig, core, "", origin)
    cfg.head, cfg.objectives = head, objectives
    cfg.modules.update(own)
    return cfg


def _check_plugin_listed(kind: str, name: str, key: str, plugins: list[str], origin: str) -> None:
    """A method registered outside ``tvr`` must come from a module under ``plugins`` (so the
    run's config.json rebuilds it in another process)."""
    from tvr.registry import get

    module = get(kind, name).__module__
    if module.split(".")[0] != "tvr" and module not in plugins:
        raise ConfigError(
            f"config key {key!r}{_where(origin)}: {kind} {name!r} comes from plug-in module "
            f"{module!r}, which registers it: list it under plugins")


def _heads() -> list[str]:
    from tvr.registry import names

    return names("head")


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
    return _build(cls, data, "", origin)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain JSON-able nested dicts (tuples become lists).

    An :class:`ExperimentConfig` is written in the canonical shape: core fields, ``head:
    {name, ...}``, ``objectives: [{name, weight, ...}, ...]``, the module sections by name,
    ``train`` (``plugins`` only when there are any).
    """
    if not isinstance(cfg, ExperimentConfig):
        return json.loads(json.dumps(dataclasses.asdict(cfg)))
    out: dict[str, Any] = {}
    for key in _CORE_ORDER:
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
    """Return the canonical-shape ``data`` with each ``key.sub=value`` override applied.

    Besides plain keys (``train.lr=1e-4``, ``seqtransf.layers=2``): ``head.name=wti`` picks the
    head, ``head.<key>=v`` sets one of its settings, ``objectives.<name>=true|false`` adds or
    removes an objective, ``objectives.<name>.<key>=v`` sets one of its settings (held for when
    it is added if it is not listed), ``objectives=[...]`` replaces the list. The old keys
    (``model.head=wti``, ``drgi.enable=true``, ``drgi.weight=0.1``, ``tcmgc.sdr=false``, ...)
    still work: :func:`tvr.config_migrate.apply_canonical_overrides` translates them.
    """
    from tvr.config_migrate import apply_canonical_overrides

    return apply_canonical_overrides(data, overrides)


def merge_layers(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """``layer`` over ``base`` (canonical shape): mappings merge key by key, lists (e.g.
    ``objectives``) and other values replace; a layer naming another head replaces the head."""
    out = _merge(base, layer)
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
    from tvr.config_migrate import is_new_shape, is_old_shape, migrate

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
            data = _merge(data, layer) if old else merge_layers(data, layer)
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
