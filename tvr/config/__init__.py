"""Experiment configuration: nested dataclasses <- YAML <- dotted CLI overrides.

Loading is strict: an unknown key or a value of the wrong type raises :class:`ConfigError`
naming the dotted key, the file it came from and what was expected.

Configs compose: a file may overlay others with a top-level ``include:`` (a dataset/recipe base,
then a small per-method overlay); see :func:`config_layers`.

The methods: ``head: {name, ...its settings}`` and ``objectives: [{name, weight, ...}, ...]``
(docs/adding-a-method.md, "Config shape"); the earlier shape (``model.head`` and one section per
method with ``enable`` switches) and its override keys are converted by
:mod:`tvr.config.migrate`.

Example:
    >>> cfg = load_config("configs/synthvtt/seqtransf.yaml", ["train.epochs=3", "objectives.drgi=true"])

Modules: :mod:`tvr.config.coerce` (strict value coercion, :class:`ConfigError`),
:mod:`tvr.config.schema` (the dataclasses and specs), :mod:`tvr.config.convert` (dicts <->
dataclasses, plug-ins), :mod:`tvr.config.files` (YAML layers, overrides, load / save),
:mod:`tvr.config.migrate` (the earlier shape), :mod:`tvr.config.traits` (what a config needs
to know of a head or objective without importing it) and :mod:`tvr.config.methods` (the
built-in methods' sections and traits). None imports torch.
"""

from __future__ import annotations

from tvr.config.coerce import (
    ConfigError,
    build_dataclass,
    coerce_value,
    type_name,
    where,
)
from tvr.config.convert import (
    PLUGINS_ENV,
    allowed_plugins,
    from_dict,
    import_plugins,
    to_dict,
)
from tvr.config.files import (
    INCLUDE_KEY,
    apply_overrides,
    config_layers,
    load_config,
    merge_dicts,
    merge_layers,
    parse_override,
    save_config,
)
from tvr.config.schema import (
    CORE_ORDER,
    HEAD_KEY,
    OBJECTIVE_DEFAULTS_KEY,
    OBJECTIVES_KEY,
    SECTION_KIND,
    ClipConfig,
    DataConfig,
    ExperimentConfig,
    HeadSpec,
    ModelConfig,
    ObjectiveSpec,
    TrainConfig,
    head_section,
    head_spec,
    is_registered,
    module_section_names,
    objective_section,
    objective_sections,
    objective_spec,
    order_objectives,
    section_class,
    section_names_all,
    section_owner,
)

__all__ = [
    "CORE_ORDER",
    "ClipConfig",
    "ConfigError",
    "DataConfig",
    "ExperimentConfig",
    "HEAD_KEY",
    "HeadSpec",
    "INCLUDE_KEY",
    "ModelConfig",
    "OBJECTIVES_KEY",
    "OBJECTIVE_DEFAULTS_KEY",
    "ObjectiveSpec",
    "PLUGINS_ENV",
    "SECTION_KIND",
    "TrainConfig",
    "allowed_plugins",
    "apply_overrides",
    "build_dataclass",
    "coerce_value",
    "config_layers",
    "from_dict",
    "head_section",
    "head_spec",
    "import_plugins",
    "is_registered",
    "load_config",
    "merge_dicts",
    "merge_layers",
    "module_section_names",
    "objective_section",
    "objective_sections",
    "objective_spec",
    "order_objectives",
    "parse_override",
    "save_config",
    "section_class",
    "section_names_all",
    "section_owner",
    "to_dict",
    "type_name",
    "where",
]
