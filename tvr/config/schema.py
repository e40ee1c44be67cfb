"""The experiment config's schema: data, model, train dataclasses, the head and objective
specs and :class:`ExperimentConfig` (module sections registered beside their code)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tvr.config.coerce import ConfigError, build_dataclass, where
from tvr.config.traits import method, method_names

T = TypeVar("T")


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
CORE_ORDER = ("name", "output_root", "plugins", "data", "model")
HEAD_KEY, OBJECTIVES_KEY, OBJECTIVE_DEFAULTS_KEY = "head", "objectives", "objective_defaults"


def section_class(name: str) -> type:
    """The dataclass registered for section ``name`` (RegistryError lists the choices)."""
    from tvr.registry import get

    return get(SECTION_KIND, name)


def section_owner(name: str) -> str:
    """"tvr" for a built-in section, else the plug-in module that registered it."""
    module = section_class(name).__module__
    return "tvr" if module.split(".")[0] == "tvr" else module


def section_names_all() -> list[str]:
    """Every registered section name, whatever registered it."""
    from tvr.registry import names

    return names(SECTION_KIND)


def head_section(head: str) -> str | None:
    """The section holding head ``head``'s settings (None: it has none)."""
    return method("head", head).section


def objective_section(objective: str) -> str:
    """The section holding objective ``objective``'s settings (one with a ``weight`` field)."""
    return method("objective", objective).section


def module_section_names(plugins: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Registered sections owned by no head and no objective (e.g. ``seqtransf``, the temporal
    module several heads share): top-level keys of the config, built-in or from ``plugins``."""
    owned = {head_section(n) for n in method_names("head")} | {
        objective_section(n) for n in method_names("objective")}
    return [n for n in section_names_all() if n not in owned and section_owner(n) in ("tvr", *plugins)]


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
    section = is_registered("head", name, f"{key}.name", origin) and head_section(name)
    if section is None:
        if params:
            raise ConfigError(
                f"config key {key!r}{where(origin)}: head {name!r} has no settings, got "
                f"{', '.join(sorted(params))}")
        return HeadSpec(name, None)
    return HeadSpec(name, build_dataclass(section_class(section), dict(params or {}), key, origin))


def objective_spec(name: str, params: Mapping[str, Any] | None = None,
                   key: str = OBJECTIVES_KEY, origin: str = "") -> ObjectiveSpec:
    """An :class:`ObjectiveSpec` for objective ``name`` with ``params`` over its defaults.

    Raises:
        ConfigError: unknown objective (listing the registered ones), or a setting it lacks.
    """
    is_registered("objective", name, f"{key}.name", origin)
    return ObjectiveSpec(name, build_dataclass(section_class(objective_section(name)),
                                      dict(params or {}), f"{key}.{name}", origin))


def is_registered(kind: str, name: Any, key: str, origin: str) -> bool:
    """True when ``name`` is a head or objective (``kind``) a config may name.

    Raises:
        ConfigError: naming ``key``, the file and the registered choices.
    """
    choices = method_names(kind)
    if not isinstance(name, str) or name not in choices:
        raise ConfigError(f"config key {key!r}{where(origin)}: unknown {kind} {name!r}; "
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
        if name != self.head.name:
            self.head = head_spec(name, params)
            self.objectives = [o for o in self.objectives
                               if method("objective", o.name).owner_head in (None, name)]
            for objective in method("head", name).with_objectives:
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
            where = "objective" if name in objective_sections() else "head"
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


def objective_sections() -> set[str]:
    return {objective_section(n) for n in method_names("objective")}


def order_objectives(specs: list[ObjectiveSpec], head: str, origin: str = "",
                     replace: bool = False) -> list[ObjectiveSpec]:
    """The objectives in construction order (each class's ``order``, then name), checked.

    Raises:
        ConfigError: an objective listed twice, one listed with the objective it replaces
            (unless ``replace``: then the replaced one leaves), or one owned by another head.
    """
    at = where(origin)
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ConfigError(f"config key 'objectives'{at}: {spec.name!r} is listed twice")
        seen.add(spec.name)
    out = []
    for spec in specs:
        cls = method("objective", spec.name)
        if cls.owner_head is not None and cls.owner_head != head:
            raise ConfigError(
                f"config key 'objectives'{at}: {spec.name!r} trains only with head "
                f"{cls.owner_head!r}, but the head is {head!r}")
        if cls.replaces in seen and not replace:
            raise ConfigError(f"config key 'objectives'{at}: {spec.name!r} replaces "
                              f"{cls.replaces!r}; list one of them")
        out.append(spec)
    dropped = {method("objective", s.name).replaces for s in out} if replace else set()
    out = [s for s in out if s.name not in dropped]
    return sorted(out, key=lambda s: (method("objective", s.name).order, s.name))
