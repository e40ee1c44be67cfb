"""Shared pieces of the foreign-checkpoint importers (data_and_metrics.md §13-14).

The formats each have their own module: :mod:`tvr.models.torchscript_reader` (a safe reader of
TorchScript archives), :mod:`tvr.models.openai_clip` (OpenAI CLIP state -> ``CLIPModel``) and
:mod:`tvr.models.clip4clip` (CLIP4Clip-family checkpoints); :mod:`tvr.models.loading` picks one
for a given source. This module holds what they share: the error type, the import report, the
weights-only ``torch.load`` and building a ``CLIPModel`` from converted tensors.

Nothing here unpickles arbitrary objects or runs code from a checkpoint: state dicts are read
with ``torch.load(weights_only=True)``; TorchScript archives go through
:func:`tvr.models.torchscript_reader.read_torchscript_state`, never ``torch.jit.load``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor


class CheckpointImportError(ValueError):
    """A foreign checkpoint that cannot be read or mapped; the message names file and key."""


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        missing: target keys (HF names, or head-state names) that no source key filled.
        unexpected: source keys that were not mapped anywhere, by their original name.
        converted: target keys that were written.
        notes: human-readable remarks (dropped metadata, eps of imported blocks, dtype casts).
        config: the ``transformers.CLIPConfig`` inferred from the CLIP tensors, when there were any.
    """

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    converted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: Any = None

    @property
    def ok(self) -> bool:
        """True when nothing is missing and nothing was left unmapped."""
        return not self.missing and not self.unexpected

    def summary(self) -> str:
        """One line: counts plus the first few missing/unexpected names."""

        def head(names: list[str]) -> str:
            shown = ", ".join(names[:5])
            return shown + (f", ... (+{len(names) - 5})" if len(names) > 5 else "")

        parts = [f"converted {len(self.converted)}"]
        if self.missing:
            parts.append(f"missing {len(self.missing)}: {head(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)}: {head(self.unexpected)}")
        return "; ".join(parts)



def check_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise CheckpointImportError(f"checkpoint file {p} does not exist")
    return p



def torch_load_state(path: Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` and unwrap a ``{"state_dict": ...}`` container."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types (UnpicklingError, RuntimeError, ...)
        raise CheckpointImportError(
            f"{path}: cannot be read as a weights-only torch state dict ({type(exc).__name__}: "
            f"{exc})"
        ) from exc
    # A training container ({"state_dict": {...}, "epoch": 3}) holds no tensors at its top level.
    for wrapper in ("state_dict", "model"):
        if (
            isinstance(obj, dict)
            and isinstance(obj.get(wrapper), dict)
            and not any(isinstance(v, Tensor) for v in obj.values())
        ):
            obj = obj[wrapper]
    if not isinstance(obj, dict):
        raise CheckpointImportError(
            f"{path}: expected a state dict (a mapping of names to tensors), got "
            f"{type(obj).__name__}"
        )
    return obj



def to_fp32(t: Tensor) -> Tensor:
    """``t`` as fp32 when it is floating point, else unchanged."""
    return t.float() if t.is_floating_point() else t



def _skip_weight_init() -> contextlib.AbstractContextManager:
    """``transformers``' ``no_init_weights`` (tensors allocated, not initialised) when it exists."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # an older transformers: initialise, then overwrite
        return contextlib.nullcontext()
    return no_init_weights()


def clip_model_from_hf_state(
    hf_sd: Mapping[str, Tensor], config: Any, *, source: str = "checkpoint", **model_kwargs: Any
) -> Any:
    """Build ``CLIPModel(config)`` and load ``hf_sd`` strictly.

    Args:
        hf_sd: HF-named fp32 tensors (from :func:`convert_openai_to_hf` or a CLIP4Clip import).
        config: the ``CLIPConfig``.
        source: the file the weights came from, for error messages.
        model_kwargs: e.g. ``attn_implementation="eager"`` (set on the config before building).

    Raises:
        CheckpointImportError: naming missing or unexpected keys.
    """
    from transformers import CLIPModel

    attn = model_kwargs.pop("attn_implementation", None)
    if model_kwargs:
        raise TypeError(f"unexpected arguments {sorted(model_kwargs)}")
    if attn is not None:
        config._attn_implementation = attn
    with _skip_weight_init():  # every weight is loaded next: random init is wasted (~4 s at B/32)
        model = CLIPModel(config)
    result = model.load_state_dict(dict(hf_sd), strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
    if missing or result.unexpected_keys:
        raise CheckpointImportError(
            f"{source}: CLIP weights do not fit the model: missing {missing}, unexpected "
            f"{list(result.unexpected_keys)}"
        )
    return model.eval()
