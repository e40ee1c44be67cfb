"""Checks a training config must pass before anything is written into its run folder.

:func:`check_training_config` validates values the schema's types cannot (positive batch size
and epochs, a run name that stays inside ``output_root``, a local ``model.pretrained`` that
exists); :func:`check_resume_config` compares a ``--resume`` config with the run's own
``config.json``. Both raise :class:`~tvr.config.ConfigError` naming the key, the value and what
was expected, and neither touches the file system beyond reading.

**Resumable keys.** A resumed run must train the model its ``config.json`` describes with the
same data order and schedule, so every key must match the recorded config except those in
:data:`RESUMABLE_KEYS`, which change only where or how fast the run executes, or what it
does after the last epoch:

- ``name``, ``output_root``: where the run folder is (it may have been moved; the folder
  resumed is the one whose ``config.json`` was read).
- ``data.num_workers``, ``data.frame_cache``, ``data.decode_threads``: loader processes, the
  decoded-frame cache and the decoder's threads (the frames are the same with or without them).
- ``train.device``: CPU or GPU.
- ``train.log_every``: how often a line is written to ``log.jsonl``.
- ``train.eval_after``: whether the split is evaluated after the last epoch.

``train.epochs`` and ``train.max_steps`` are *not* resumable: they set the total step count,
which shapes the warm-up/cosine learning-rate schedule of every step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tvr.config import ConfigError, ExperimentConfig, to_dict

RESUMABLE_KEYS: frozenset[str] = frozenset({
    "name",
    "output_root",
    "data.num_workers",
    "data.frame_cache",
    "data.decode_threads",
    "train.device",
    "train.log_every",
    "train.eval_after",
})

# File suffixes of the local checkpoints model.pretrained may name (never a hub id).
_CHECKPOINT_SUFFIXES: tuple[str, ...] = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".tar")


def is_hub_id(value: str) -> bool:
    """Whether ``value`` is a valid Hugging Face hub repo id, ``name`` or ``org/name``.

    The hub's own rule (``huggingface_hub.utils.validate_repo_id``): letters, digits, ``-``,
    ``_`` and ``.``; no ``--`` or ``..``; ``-`` and ``.`` neither first nor last in a part; at
    most 96 characters. The one definition used by the config checks and the backbone loader.
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return True


def looks_like_local_path(value: str) -> bool:
    """Whether ``model.pretrained``/``model.tokenizer`` text names a local path, not a hub id.

    True for what exists on disk, absolute or ``~`` / ``.``-relative paths, more than one
    ``/``, backslashes, checkpoint file suffixes (``.pt``, ``.bin``, ...) and anything that is
    not a valid hub id (:func:`is_hub_id`); ``org/name`` and ``name`` that do not exist
    locally are hub ids.
    """
    if not value:
        return False
    if Path(value).expanduser().exists():
        return True
    if value.startswith(("/", "~", ".")) or "\\" in value or value.count("/") > 1:
        return True
    if value.lower().endswith(_CHECKPOINT_SUFFIXES):
        return True
    return not is_hub_id(value)


def check_run_name(name: str, output_root: str) -> None:
    """Refuse a ``name`` whose run folder would not be a direct child of ``output_root``.

    Raises:
        ConfigError: empty, ``.``/``..``, absolute, or containing a path separator.
    """
    bad = (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or Path(name).is_absolute()
        or "\x00" in name
    )
    if bad:
        raise ConfigError(
            f"name={name!r}: expected a plain folder name (no '/', '\\', '..' or absolute "
            f"path), so the run folder stays inside output_root={output_root!r}"
        )


def check_training_config(cfg: ExperimentConfig) -> None:
    """Values :func:`tvr.train.train` needs that the schema's types do not guarantee.

    Raises:
        ConfigError: naming the key and value (``train.batch_size=0``, ``train.epochs=0``,
            ``name=../x``, a ``model.pretrained`` path that does not exist, ...).
    """
    check_run_name(cfg.name, cfg.output_root)
    positive = {
        "train.batch_size": cfg.train.batch_size,
        "train.epochs": cfg.train.epochs,
        "train.log_every": cfg.train.log_every,
        "data.num_frames": cfg.data.num_frames,
        "data.max_words": cfg.data.max_words,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key}={value!r}: expected a positive integer (>= 1)")
    for key, value in {"train.max_steps": cfg.train.max_steps,
                       "data.num_workers": cfg.data.num_workers}.items():
        if value < 0:
            raise ConfigError(f"{key}={value!r}: expected an integer >= 0")
    check_pretrained_exists(cfg.model.pretrained)
    check_tokenizer_source(cfg.model.pretrained, cfg.model.tokenizer)


CHECKPOINT_FILE = "a checkpoint file, which holds no tokenizer"


def check_tokenizer_source(pretrained: str, tokenizer: str) -> None:
    """Raise before a run starts when its tokenizer cannot be found on disk.

    A local ``model.tokenizer`` must exist; without one, a ``model.pretrained`` checkpoint file
    (OpenAI archive, CLIP4Clip file) has no tokenizer to offer. Folders and hub ids are left to
    :func:`tvr.train.prepare_tokenizer`.

    Raises:
        ConfigError: naming the key, the file to provide and where it is usually found.
    """
    from tvr.data.clip_bpe import WHERE_TO_FIND, missing_tokenizer_message

    if tokenizer and looks_like_local_path(tokenizer):
        if not Path(tokenizer).expanduser().exists():
            raise ConfigError(
                f"model.tokenizer={tokenizer!r} does not exist (expected OpenAI's BPE file, a "
                f"tokenizer folder, or a hub id). {WHERE_TO_FIND}"
            )
    elif not tokenizer and pretrained and Path(pretrained).expanduser().is_file():
        raise ConfigError(missing_tokenizer_message(pretrained, CHECKPOINT_FILE))


def check_pretrained_exists(pretrained: str) -> None:
    """Raise when ``model.pretrained`` names a local path that does not exist.

    Hub ids (``org/name``) are left to the loaders (they resolve them, or fail offline).
    """
    if pretrained and looks_like_local_path(pretrained) and not Path(pretrained).expanduser().exists():
        raise ConfigError(
            f"model.pretrained={pretrained!r} does not exist (expected an HF CLIP folder, an "
            "OpenAI .pt, a CLIP4Clip .bin, a run folder, or a hub id such as org/name)"
        )


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys as overrides write them; the objectives list by name
    (``objectives.drgi.weight``; ``objectives.drgi`` True where one side lacks it)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else k
        if key == "objectives" and isinstance(v, list):
            for entry in v:
                name = entry.get("name", "?")
                out[f"objectives.{name}"] = True
                out.update(_flatten({n: x for n, x in entry.items() if n != "name"},
                                    f"objectives.{name}"))
            continue
        if isinstance(v, dict) and v and not key.endswith("source_options"):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def config_differences(
    a: ExperimentConfig, b: ExperimentConfig, ignore: frozenset[str] = frozenset()
) -> list[tuple[str, Any, Any]]:
    """``(dotted key, value in a, value in b)`` for every key that differs, sorted by key."""
    fa, fb = _flatten(to_dict(a)), _flatten(to_dict(b))
    return [
        (k, fa.get(k), fb.get(k))
        for k in sorted(set(fa) | set(fb))
        if k not in ignore and fa.get(k) != fb.get(k)
    ]


def check_resume_config(cfg: ExperimentConfig, recorded: ExperimentConfig, config_path: Path) -> None:
    """Refuse a ``--resume`` whose config differs from the run's ``config.json``.

    Args:
        cfg: the config given to the resumed run.
        recorded: the run's own config (read from ``config_path``).
        config_path: the run's ``config.json``, for the message.

    Raises:
        ConfigError: naming every differing key with both values, and the resumable keys.
    """
    diffs = config_differences(recorded, cfg, RESUMABLE_KEYS)
    if diffs:
        listed = "; ".join(f"{k}: run has {a!r}, --resume got {b!r}" for k, a, b in diffs[:10])
        more = f" (and {len(diffs) - 10} more)" if len(diffs) > 10 else ""
        raise ConfigError(
            f"--resume config differs from {config_path}: {listed}{more}. Only "
            f"{', '.join(sorted(RESUMABLE_KEYS))} may change on resume; train a new run "
            "(another name=) to change anything else"
        )
