"""A run folder's file names and what reading them needs no ``torch`` for: whether a folder
is a run, its config (validated, :mod:`tvr.config`), file hashes.

:mod:`tvr.checkpoint` (saving and loading weights and the train state) re-exports these; the
app's start (the demo's and the bundles' freshness checks, the model cards) uses them without
importing torch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tvr.config import ConfigError, ExperimentConfig, from_dict

CONFIG = "config.json"
ENCODER = "encoder.json"
WEIGHTS = "model.safetensors"
TOKENIZER = "tokenizer"
TRAIN_STATE = "train_state.pt"
LOG = "log.jsonl"


class CheckpointError(RuntimeError):
    """A run folder that is missing files or does not match its config."""


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a run's ``config.json`` and ``model.safetensors``."""
    p = Path(path)
    return (p / CONFIG).is_file() and (p / WEIGHTS).is_file()


def sha256_file(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_run_config(run_dir: str | Path) -> ExperimentConfig:
    """The run's resolved config (``config.json``, an old-shape file migrated).

    Raises:
        CheckpointError: the file is missing, not JSON, or not a valid config (naming it).
    """
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
