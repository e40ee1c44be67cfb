"""Run folders: save and load a trained model, and the resumable train state.

A run folder holds ``config.json`` (the resolved :class:`ExperimentConfig`), ``encoder.json``
(the backbone's own architecture, so the model rebuilds without the original pretrained
weights), ``model.safetensors`` (fp32 weights, CPU-loadable whatever device saved them),
``tokenizer/`` and, while training, ``train_state.pt`` (optimiser, schedule, RNG; loaded with
``weights_only=True``). Every file is written atomically.

**Resume consistency.** Weights and train state are two files, so a kill between the two writes
leaves them from different epochs. Training stamps ``model.safetensors``' header with the step
and epoch it was saved at, and ``train_state.pt`` (written second) records the sha256 of the
weights file it belongs to; :func:`check_resume_files` refuses a pair that does not match,
naming both files and their steps. :func:`truncate_log` drops ``log.jsonl`` lines past the
resumed step, so a resumed run never logs a step twice.

Foreign formats (OpenAI CLIP, CLIP4Clip/DRL checkpoints) are imported through
:mod:`tvr.models.loading`, which also rebuilds a run's backbone from ``encoder.json``.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from tvr.config import ExperimentConfig, save_config
from tvr.io import atomic_path, atomic_write_text
from tvr.run_folder import (  # noqa: F401  (re-exported: the run folder's names)
    CONFIG,
    ENCODER,
    LOG,
    TOKENIZER,
    TRAIN_STATE,
    WEIGHTS,
    CheckpointError,
    is_run_dir,
    load_run_config,
    sha256_file,
)

log = logging.getLogger(__name__)

# keys of the train state / safetensors header that tie the two files together
STATE_WEIGHTS_SHA256 = "weights_sha256"


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


def save_weights(
    model: nn.Module,
    path: str | Path,
    inference: bool = False,
    stamp: dict[str, int] | None = None,
) -> None:
    """Write ``model``'s weights as safetensors, atomically.

    ``stamp`` (e.g. ``{"step": 40, "epoch": 1}``) goes into the file's header metadata, where
    :func:`read_weights_stamp` reads it back.
    """
    sd = state_dict_for_save(model, inference=inference)
    metadata = {"format": "pt", **{k: str(int(v)) for k, v in (stamp or {}).items()}}
    with atomic_path(path) as tmp:
        save_file(sd, str(tmp), metadata=metadata)


def load_weights(path: str | Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file; a truncated or corrupt file raises an error naming it.

    Raises:
        CheckpointError: the file is missing, unreadable, truncated or not safetensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(
            f"cannot read weights file {path} ({path.stat().st_size} bytes): {exc} "
            "(truncated or corrupt; re-train or restore the run folder)"
        ) from None


def read_weights_stamp(path: str | Path) -> dict[str, int]:
    """The ``step``/``epoch`` stamp :func:`save_weights` wrote into a safetensors header
    (empty for files saved without one)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read the header of weights file {path}: {exc}") from None
    out = {}
    for key in ("step", "epoch"):
        if key in meta:
            try:
                out[key] = int(meta[key])
            except ValueError:
                raise CheckpointError(
                    f"{path}: header metadata {key}={meta[key]!r} is not an integer"
                ) from None
    return out


def save_pretrained(
    model: nn.Module,
    run_dir: str | Path,
    tokenizer: Any | None = None,
    stamp: dict[str, int] | None = None,
) -> Path:
    """Write config, encoder architecture, weights and tokenizer into ``run_dir``.

    ``stamp`` (``{"step", "epoch"}``) is written into the weights file's header.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(model.cfg, run_dir / CONFIG)
    atomic_write_text(
        run_dir / ENCODER,
        json.dumps({"encoder": model.cfg.model.encoder, "config": model.encoder.export_config()},
                   indent=2) + "\n",
    )
    save_weights(model, run_dir / WEIGHTS, stamp=stamp)
    if tokenizer is not None and not (run_dir / TOKENIZER).is_dir():
        tokenizer.save(run_dir / TOKENIZER)
    return run_dir


def build_model_from_run(run_dir: str | Path, cfg: ExperimentConfig | None = None) -> nn.Module:
    """Rebuild the (randomly initialised) model architecture a run folder describes."""
    from tvr.models.backbone import BackboneError
    from tvr.models.loading import encoder_architecture
    from tvr.retriever import Retriever

    run_dir = Path(run_dir)
    cfg = cfg or load_run_config(run_dir)
    enc_path = run_dir / ENCODER
    if not enc_path.is_file():
        raise CheckpointError(f"{run_dir}: {ENCODER} is missing (cannot rebuild the backbone)")
    try:
        encoder = encoder_architecture(enc_path)
    except BackboneError as exc:
        raise CheckpointError(str(exc)) from None
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
    sd = load_weights(run_dir / WEIGHTS, device="cpu")
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
    """Load ``train_state.pt`` with ``weights_only=True`` (no arbitrary unpickling).

    Raises:
        CheckpointError: the file is missing, truncated or not a train state.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no train state at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
        raise CheckpointError(f"cannot read train state {path}: {exc}") from None
    if not isinstance(state, dict) or not {"epoch", "step"} <= set(state):
        raise CheckpointError(f"{path} is not a train state (no epoch/step entries)")
    return state


def load_resume_state(cfg: ExperimentConfig, run_dir: str | Path) -> dict[str, Any]:
    """Everything ``--resume`` checks, before the run folder is modified; returns the state.

    The config must match the run's ``config.json`` but for
    :data:`tvr.run_checks.RESUMABLE_KEYS`, and ``model.safetensors`` must be the file
    ``train_state.pt`` was saved with (:func:`check_resume_files`).

    Raises:
        CheckpointError: no run or train state there, or the two files do not match.
        ConfigError: the config differs from the run's in a key that cannot change on resume.
    """
    from tvr.run_checks import check_resume_config

    run_dir = Path(run_dir)
    state_path = run_dir / TRAIN_STATE
    if not state_path.is_file():
        raise CheckpointError(
            f"cannot resume {run_dir}: no {TRAIN_STATE} there (no epoch of this run finished; "
            "start it again without --resume)"
        )
    recorded = load_run_config(run_dir)
    check_resume_config(cfg, recorded, run_dir / CONFIG)
    state = load_train_state(state_path)
    check_resume_files(run_dir, state)
    return state


def check_resume_files(run_dir: str | Path, state: dict[str, Any]) -> None:
    """Refuse to resume when ``model.safetensors`` is not the file ``train_state.pt`` was
    saved with (a kill between the two writes, or a file copied in from elsewhere).

    ``state`` must come from ``run_dir/train_state.pt``. States written before the check
    existed (no recorded sha256) are accepted with a warning when the weights carry no stamp
    that contradicts them.

    Raises:
        CheckpointError: naming both files, their steps/epochs, and what to do.
    """
    run_dir = Path(run_dir)
    weights, state_path = run_dir / WEIGHTS, run_dir / TRAIN_STATE
    if not weights.is_file():
        raise CheckpointError(
            f"cannot resume {run_dir}: {TRAIN_STATE} exists but {WEIGHTS} is missing"
        )
    stamp = read_weights_stamp(weights)
    recorded = state.get(STATE_WEIGHTS_SHA256)
    s_step, s_epoch = int(state["step"]), int(state["epoch"])
    stamp_mismatch = "step" in stamp and stamp["step"] != s_step
    if recorded is None and not stamp_mismatch:
        log.warning("%s records no weights hash (older run): resuming without the consistency "
                    "check of %s", state_path, weights)
        return
    if stamp_mismatch or sha256_file(weights) != recorded:
        w_at = (f"step {stamp['step']}, epoch {stamp.get('epoch', '?')}" if "step" in stamp
                else "no step stamp")
        raise CheckpointError(
            f"cannot resume {run_dir}: {weights} ({w_at}) is not the weights file {state_path} "
            f"(step {s_step}, epoch {s_epoch}) was saved with (its sha256 differs from the one "
            "the train state records). The run was probably killed between writing the two "
            "files; resuming would repeat or skip an epoch. Restart the run under a new name= "
            f"(or delete {state_path} to keep {WEIGHTS} as a finished model)"
        )


def truncate_log(path: str | Path, step: int) -> int:
    """Drop the lines of a JSONL training log whose ``step`` is beyond ``step``, atomically.

    Unparsable lines (one cut by a kill) are dropped too; lines without a ``step`` are kept.
    Returns the number of lines dropped (0: the file is left as it is).
    """
    path = Path(path)
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = []
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        past = isinstance(rec, dict) and isinstance(rec.get("step"), int) and rec["step"] > step
        if not past:
            kept.append(line if line.endswith("\n") else line + "\n")
    dropped = len(lines) - len(kept)
    if dropped:
        atomic_write_text(path, "".join(kept))
        log.info("%s: dropped %d line(s) past step %d", path, dropped, step)
    return dropped
