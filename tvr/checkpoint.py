"""Run folders: save and load a trained model, and the resumable train state.

A run folder holds ``config.json`` (the resolved :class:`ExperimentConfig`), ``encoder.json``
(the backbone's own architecture, so the model rebuilds without the original pretrained
weights), ``model.safetensors`` (fp32 weights, CPU-loadable whatever device saved them),
``tokenizer/`` and, while training, ``train_state.pt`` (optimiser, schedule, RNG; loaded with
``weights_only=True``). Every file is written atomically.

Foreign formats (OpenAI CLIP, CLIP4Clip/DRL checkpoints) are imported by
:mod:`tvr.models.importers`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tvr import registry
from tvr.config import ConfigError, ExperimentConfig, from_dict, save_config
from tvr.io import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

CONFIG = "config.json"
ENCODER = "encoder.json"
WEIGHTS = "model.safetensors"
TOKENIZER = "tokenizer"
TRAIN_STATE = "train_state.pt"


class CheckpointError(RuntimeError):
    """A run folder that is missing files or does not match its config."""


def is_run_dir(path: str | Path) -> bool:
    p = Path(path)
    return (p / CONFIG).is_file() and (p / WEIGHTS).is_file()


def state_dict_for_save(model: nn.Module, inference: bool = False) -> dict[str, torch.Tensor]:
    """fp32, contiguous, CPU copies of the weights; ``inference`` drops training-only objectives."""
    if inference and hasattr(model, "for_inference"):
        model = model.for_inference()
    out = {}
    for k, v in model.state_dict().items():
        t = v.detach().to("cpu")
        if t.is_floating_point():
            t = t.float()
        out[k] = t.contiguous()
    return _dedupe_shared(out)


def _dedupe_shared(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors sharing memory: clone the later aliases."""
    seen: dict[int, str] = {}
    for k, v in sd.items():
        ptr = v.untyped_storage().data_ptr()
        if ptr in seen:
            sd[k] = v.clone()
        else:
            seen[ptr] = k
    return sd


def save_weights(model: nn.Module, path: str | Path, inference: bool = False) -> None:
    """Write ``model``'s weights as safetensors, atomically."""
    sd = state_dict_for_save(model, inference=inference)
    with atomic_path(path) as tmp:
        save_file(sd, str(tmp), metadata={"format": "pt"})


def save_pretrained(model: nn.Module, run_dir: str | Path, tokenizer: Any | None = None) -> Path:
    """Write config, encoder architecture, weights and tokenizer into ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(model.cfg, run_dir / CONFIG)
    atomic_write_text(
        run_dir / ENCODER,
        json.dumps({"encoder": model.cfg.model.encoder, "config": model.encoder.export_config()},
                   indent=2) + "\n",
    )
    save_weights(model, run_dir / WEIGHTS)
    if tokenizer is not None and not (run_dir / TOKENIZER).is_dir():
        tokenizer.save(run_dir / TOKENIZER)
    return run_dir


def load_run_config(run_dir: str | Path) -> ExperimentConfig:
    run_dir = Path(run_dir)
    path = run_dir / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a run folder: {CONFIG} is missing")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    try:
        return from_dict(data, ExperimentConfig, origin=str(path))
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None


def build_model_from_run(run_dir: str | Path, cfg: ExperimentConfig | None = None) -> nn.Module:
    """Rebuild the (randomly initialised) model architecture a run folder describes."""
    from tvr.models.retriever import Retriever

    run_dir = Path(run_dir)
    cfg = cfg or load_run_config(run_dir)
    enc_path = run_dir / ENCODER
    if not enc_path.is_file():
        raise CheckpointError(f"{run_dir}: {ENCODER} is missing (cannot rebuild the backbone)")
    enc = json.loads(enc_path.read_text())
    encoder_cls = registry.get("encoder", enc["encoder"])
    encoder = encoder_cls.from_exported_config(enc["config"])
    return Retriever(cfg, encoder)


def load_pretrained(
    run_dir: str | Path, device: str | torch.device = "cpu", strict: bool = True
) -> tuple[nn.Module, Any, ExperimentConfig]:
    """Load a run folder: ``(model in eval mode, tokenizer, config)``.

    Weights saved on a GPU (fp16 or fp32) load on CPU: safetensors holds fp32 CPU tensors.
    Training-only objectives missing from the file (an inference export) are tolerated.
    """
    from tvr.data.tokenizer import load_tokenizer

    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise CheckpointError(
            f"{run_dir} is not a run folder: expected {CONFIG} and {WEIGHTS} inside it"
        )
    cfg = load_run_config(run_dir)
    model = build_model_from_run(run_dir, cfg)
    sd = load_file(str(run_dir / WEIGHTS), device="cpu")
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.startswith("objectives.")]
    if strict and (missing or unexpected):
        raise CheckpointError(
            f"{run_dir / WEIGHTS} does not match {run_dir / CONFIG}: "
            f"missing {missing[:10]}, unexpected {unexpected[:10]}"
        )
    tok_dir = run_dir / TOKENIZER
    tokenizer_src = str(tok_dir) if tok_dir.is_dir() else (cfg.model.tokenizer or cfg.model.pretrained)
    tokenizer = load_tokenizer(tokenizer_src)
    return model.to(device).eval(), tokenizer, cfg


# ------------------------------------------------------------------------------ train state
def save_train_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write the resumable state (plain containers of tensors and numbers) atomically."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_train_state(path: str | Path) -> dict[str, Any]:
    """Load ``train_state.pt`` with ``weights_only=True`` (no arbitrary unpickling)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no train state at {path}")
    return torch.load(path, map_location="cpu", weights_only=True)
