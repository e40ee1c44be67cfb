"""Model cards: what a run is (backbone, head, objectives, training) and its parameter counts.

Read from the run folder only: ``config.json`` (the resolved experiment config: its head and
objectives are read by the same loader the model builder uses, an old-shape file migrated) and
the tensor shapes in the header of ``model.safetensors`` (no weights are loaded).

Parameter groups are the first components of the state-dict keys: ``encoder`` (the CLIP
backbone), ``head`` (the similarity head), ``objectives.<name>`` (training-only modules such as
DRGI's GAT and discriminator) and ``other`` (e.g. ``logit_scale``). Counts include frozen
weights (a checkpoint does not record ``requires_grad``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CONFIG = "config.json"
WEIGHTS = "model.safetensors"

class CardError(RuntimeError):
    """A run folder whose config or weights cannot be read."""


@dataclass(frozen=True)
class ModelCard:
    """What a run is and how big.

    Attributes:
        run: the run folder's name.
        path: the run folder.
        backbone: encoder name and where its weights came from (e.g. ``"hf_clip (from
            scratch, embed 512, text 12x512, vision 12x768 /32)"``).
        head: similarity head name.
        objectives: the training objectives with their weights, e.g. ``{"infonce": 1.0,
            "drgi": 0.1}``.
        drgi: DRGI settings (mode, nodes, hidden, heads, weight, neg_topm) or None.
        parameters: parameter count per group (``encoder``, ``head``, ``objectives.<name>``,
            ``other``) and ``total``.
        inference_parameters: ``total`` minus the training-only objectives.
        drgi_parameters: parameters of the DRGI objective (0 without DRGI).
        drgi_share: ``drgi_parameters / total`` (0.0 without DRGI).
        training: the training config (epochs, batch size, learning rates, ...).
        data: dataset, root, frames, image size, max words.
        config: the whole ``config.json``.
    """

    run: str
    path: Path
    backbone: str
    head: str
    objectives: dict[str, float]
    drgi: dict[str, Any] | None
    parameters: dict[str, int]
    inference_parameters: int
    drgi_parameters: int
    drgi_share: float
    training: dict[str, Any]
    data: dict[str, Any]
    config: dict[str, Any] = field(repr=False)

    def rows(self) -> list[tuple[str, str]]:
        """``(field, value)`` pairs for a two-column display."""
        out = [
            ("backbone", self.backbone),
            ("head", self.head),
            ("objectives", ", ".join(f"{k} (w={v:g})" for k, v in self.objectives.items())),
            ("parameters (checkpoint)", f"{self.parameters.get('total', 0):,}"),
            ("parameters at inference", f"{self.inference_parameters:,}"),
            ("DRGI parameters", f"{self.drgi_parameters:,} ({100 * self.drgi_share:.2f} %)"),
        ]
        for group, n in self.parameters.items():
            if group != "total":
                out.append((f"  {group}", f"{n:,}"))
        if self.drgi:
            out.append(("DRGI settings", ", ".join(f"{k}={v}" for k, v in self.drgi.items())))
        out.append(("data", ", ".join(f"{k}={v}" for k, v in self.data.items())))
        out.append(("training", ", ".join(f"{k}={v}" for k, v in self.training.items())))
        return out


def parameter_counts(weights: str | Path) -> dict[str, int]:
    """Parameter count per group from a safetensors header (no tensor is loaded).

    Returns:
        ``{"encoder": n, "head": n, "objectives.<name>": n, ..., "other": n, "total": n}``
        (groups without tensors are left out, ``total`` is always there).

    Raises:
        CardError: the file is missing or not a safetensors file.
    """
    from safetensors import safe_open

    path = Path(weights)
    if not path.is_file():
        raise CardError(f"{path} is missing: no weights to count")
    counts: dict[str, int] = {}
    try:
        with safe_open(str(path), framework="np") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open has no __iter__)
                n = 1
                for d in f.get_slice(key).get_shape():
                    n *= int(d)
                parts = key.split(".")
                if parts[0] in ("encoder", "head"):
                    group = parts[0]
                elif parts[0] == "objectives" and len(parts) > 1:
                    group = f"objectives.{parts[1]}"
                else:
                    group = "other"
                counts[group] = counts.get(group, 0) + n
    except Exception as exc:  # safetensors raises its own SafetensorError and OSError
        raise CardError(f"{path}: cannot read the safetensors header ({exc})") from None
    counts["total"] = sum(counts.values())
    return counts


def _section(cfg: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = cfg.get(name, {})
    return dict(value) if isinstance(value, Mapping) else {}


def _backbone(model: Mapping[str, Any]) -> str:
    encoder = str(model.get("encoder", "?"))
    pretrained = str(model.get("pretrained", "") or "")
    if pretrained:
        return f"{encoder} ({pretrained})"
    clip = model.get("clip", {}) if isinstance(model.get("clip"), Mapping) else {}
    return (
        f"{encoder} (from scratch, embed {clip.get('embed_dim', '?')}, text "
        f"{clip.get('text_layers', '?')}x{clip.get('text_width', '?')}, vision "
        f"{clip.get('vision_layers', '?')}x{clip.get('vision_width', '?')} "
        f"/{clip.get('patch_size', '?')})"
    )


def _experiment(cfg: Mapping[str, Any], origin: str = "") -> Any:
    """The :class:`tvr.config.ExperimentConfig` of a raw ``config.json`` dict (old shape
    migrated; a plug-in it names is imported only as :func:`tvr.config.import_plugins` allows)."""
    from tvr.config import from_dict

    return from_dict(dict(cfg), origin=origin)


def objectives_of(cfg: Mapping[str, Any], counts: Mapping[str, int] | None = None) -> dict[str, float]:
    """The objectives a config trains with, name -> loss weight.

    The list the model is built from (``ExperimentConfig.objectives``, read from the raw
    ``config.json`` by the same loader; an old-shape file is migrated). Objectives found in the
    weights (``counts``) but not in the config are added with weight NaN.
    """
    out = {o.name: o.weight for o in _experiment(cfg).objectives}
    for group in counts or {}:
        if group.startswith("objectives."):
            out.setdefault(group.split(".", 1)[1], float("nan"))
    return out


def model_card(run_dir: str | Path) -> ModelCard:
    """Build the :class:`ModelCard` of a run folder.

    Raises:
        CardError: ``config.json`` missing or not a JSON object, or unreadable weights.
    """
    run = Path(run_dir)
    path = run / CONFIG
    if not path.is_file():
        raise CardError(f"{run} is not a run folder: {CONFIG} is missing")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CardError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise CardError(f"{path}: expected a JSON object, got {type(cfg).__name__}")
    counts = parameter_counts(run / WEIGHTS)
    model = _section(cfg, "model")
    from tvr.config import ConfigError

    try:
        experiment = _experiment(cfg, str(path))
    except ConfigError as exc:
        raise CardError(str(exc)) from None
    objectives = {o.name: o.weight for o in experiment.objectives}
    for group in counts:
        if group.startswith("objectives."):
            objectives.setdefault(group.split(".", 1)[1], float("nan"))
    training_only = sum(n for g, n in counts.items() if g.startswith("objectives."))
    drgi_n = int(counts.get("objectives.drgi", 0))
    total = int(counts["total"])
    spec = experiment.objective("drgi")
    drgi = None
    if spec is not None:
        drgi = {k: getattr(spec.params, k) for k in ("mode", "nodes", "hidden", "heads",
                                                     "weight", "neg_topm")}
    train = _section(cfg, "train")
    data = _section(cfg, "data")
    return ModelCard(
        run=run.name,
        path=run,
        backbone=_backbone(model),
        head=experiment.head.name,
        objectives=objectives,
        drgi=drgi,
        parameters={k: int(v) for k, v in counts.items()},
        inference_parameters=total - training_only,
        drgi_parameters=drgi_n,
        drgi_share=drgi_n / total if total else 0.0,
        training={k: train[k] for k in ("epochs", "batch_size", "optim", "lr", "clip_lr",
                                        "weight_decay", "warmup", "seed", "amp") if k in train},
        data={k: data[k] for k in ("dataset", "train_split", "num_frames", "image_size",
                                   "max_words") if k in data},
        config=cfg,
    )
