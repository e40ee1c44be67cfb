"""Where a backbone's weights come from: one place resolves every source (DESIGN.md seam 2).

:func:`load_encoder` takes a weights source and returns a :class:`LoadedEncoder`: the encoder
plus the head tensors that came with the weights, if any. The source kind is detected
(:func:`source_kind`):

==============  ==============================================================================
kind            source
==============  ==============================================================================
``run``         a run folder (``encoder.json`` + ``model.safetensors``): that run's backbone and
                trained weights; its ``head.*`` tensors become the head state
``hf``          a Hugging Face CLIP folder (``config.json`` with ``model_type: clip``), or a hub
                id when online
``openai``      an OpenAI CLIP ``.pt`` (TorchScript archive, read without running its code, or a
                state dict) or its ``.safetensors`` conversion (:mod:`tvr.models.openai_clip`)
``clip4clip``   a CLIP4Clip-family checkpoint, ``pytorch_model.bin*`` / ``*.bin`` or a ``.pt``
                state dict whose keys start with ``clip.`` (:mod:`tvr.models.clip4clip`); its
                temporal-module and head tensors become the head state
==============  ==============================================================================

:func:`build_encoder` is what training calls: ``cfg.model.pretrained`` empty builds a
from-scratch CLIP of ``cfg.model.clip``'s size, anything else goes through :func:`load_encoder`
and is checked against the data config and the tokenizer. :func:`encoder_architecture` rebuilds
a run folder's backbone (randomly initialised) from its ``encoder.json``; :mod:`tvr.checkpoint`
uses it when it loads a whole run.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tvr.config import ExperimentConfig
from tvr.models.backbone import BackboneError, BackboneNotFoundError, Encoder, HFClipEncoder
from tvr.registry import get
from tvr.run_checks import is_hub_id

log = logging.getLogger(__name__)

SOURCE_KINDS: tuple[str, ...] = ("run", "hf", "openai", "clip4clip")

_OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_EXPECTED = (
    "expected a run folder (encoder.json + model.safetensors), a Hugging Face CLIP folder "
    "(config.json), an OpenAI CLIP .pt / .safetensors file, a CLIP4Clip pytorch_model.bin* "
    "file, or a hub id (online only)"
)


@dataclass
class LoadedEncoder:
    """An encoder and what came with its weights.

    Attributes:
        encoder: the backbone, weights loaded (randomly initialised for a from-scratch build).
        head_state: head tensors that came with the weights, named as the head's
            ``state_dict`` of a run (``temporal.blocks.0...``) or in the importer's head-state
            naming for a CLIP4Clip checkpoint (:mod:`tvr.models.clip4clip`); empty when none.
        kind: ``"scratch"`` or one of :data:`SOURCE_KINDS`.
        source: the path or hub id the weights came from (``""`` for a from-scratch build).
    """

    encoder: Encoder
    head_state: dict[str, Tensor] = field(default_factory=dict)
    kind: str = "scratch"
    source: str = ""


# --------------------------------------------------------------------------------------------
# Detecting the source
# --------------------------------------------------------------------------------------------


def _offline() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
        for var in _OFFLINE_ENV
    )


def _is_run_folder(path: Path) -> bool:
    from tvr import checkpoint

    return (path / checkpoint.ENCODER).is_file()


def _holds_clip4clip_keys(path: Path) -> bool:
    """Whether a ``.pt`` file is a state dict with ``clip.*`` keys (read weights-only).

    TorchScript archives (OpenAI's format) and unreadable files answer False: the OpenAI reader
    then reads them, or raises an error naming the file.
    """
    from tvr.models.importers import CheckpointImportError, torch_load_state
    from tvr.models.torchscript_reader import is_torchscript_archive

    if is_torchscript_archive(path):
        return False
    try:
        state = torch_load_state(path)
    except CheckpointImportError:
        return False
    return any(str(k).removeprefix("module.").startswith("clip.") for k in state)


def source_kind(source: str | Path) -> str:
    """Which of :data:`SOURCE_KINDS` ``source`` is (see the module docstring).

    Raises:
        BackboneError: an empty source, or an existing file of no supported kind.
        BackboneNotFoundError: nothing exists at the path and it is not a hub id.
    """
    name = str(source).strip()
    if not name:
        raise BackboneError(f"an empty weights source: {_EXPECTED}")
    path = Path(name).expanduser()
    if path.is_dir():
        return "run" if _is_run_folder(path) else "hf"
    if path.is_file():
        if path.name.startswith("pytorch_model.bin") or path.suffix == ".bin":
            return "clip4clip"
        if path.suffix == ".safetensors":
            return "openai"
        if path.suffix == ".pt":
            return "clip4clip" if _holds_clip4clip_keys(path) else "openai"
        raise BackboneError(f"pretrained {name!r}: unsupported file; {_EXPECTED}")
    if path.exists() or not is_hub_id(name):  # a path-like name is never a hub id
        raise BackboneNotFoundError(
            f"pretrained {name!r}: not an existing Hugging Face CLIP folder (nor a hub id), "
            f"nor any other weights file; {_EXPECTED}"
        )
    return "hf"


# --------------------------------------------------------------------------------------------
# One loader per kind
# --------------------------------------------------------------------------------------------


def encoder_architecture(encoder_json: str | Path) -> Encoder:
    """Rebuild the (randomly initialised) encoder a run's ``encoder.json`` describes.

    Raises:
        BackboneError: the file is missing, not JSON, lacks the ``encoder``/``config`` keys or
            names an unregistered encoder; the message names the file.
    """
    path = Path(encoder_json)
    if not path.is_file():
        raise BackboneError(f"{path} is missing (cannot rebuild the backbone)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BackboneError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "encoder" not in data or "config" not in data:
        raise BackboneError(f"{path}: expected keys 'encoder' and 'config'")
    return get("encoder", data["encoder"]).from_exported_config(data["config"])


def _load_run(run_dir: Path, *, eager_attention: bool) -> LoadedEncoder:
    """A run's backbone with its trained weights; ``head.*`` tensors -> head state."""
    from tvr import checkpoint

    weights_file = run_dir / checkpoint.WEIGHTS
    if not weights_file.is_file():
        raise BackboneError(
            f"{run_dir} is not a complete run folder: {checkpoint.WEIGHTS} is missing next to "
            f"{checkpoint.ENCODER}"
        )
    encoder = encoder_architecture(run_dir / checkpoint.ENCODER)
    try:
        state = checkpoint.load_weights(weights_file)
    except checkpoint.CheckpointError as exc:
        raise BackboneError(str(exc)) from None
    enc_state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    result = encoder.load_state_dict(enc_state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise BackboneError(
            f"{weights_file}: encoder weights do not fit {run_dir / checkpoint.ENCODER}: missing "
            f"{result.missing_keys[:10]}, unexpected {result.unexpected_keys[:10]}"
        )
    if eager_attention and isinstance(encoder, HFClipEncoder):
        encoder.set_eager_attention(True)
    head_state = {k[len("head."):]: v for k, v in state.items() if k.startswith("head.")}
    log.info("loaded the backbone of run %s", run_dir)
    return LoadedEncoder(encoder, head_state, "run", str(run_dir))


def _load_hf(
    name: str,
    *,
    eager_attention: bool,
    bos_id: int | None,
    eos_id: int | None,
    pad_id: int | None,
    skip_padded_frames: bool,
) -> LoadedEncoder:
    """An HF CLIP folder, or a hub id when online; weights in fp32.

    Special ids given here (the tokenizer's) replace the config's; ``projection_dim`` is copied
    into both sub-configs. A config whose ``eos_token_id`` is the legacy 2 pools sentences at
    ``argmax(ids)`` unless ``eos_id`` is given.
    """
    from transformers import CLIPConfig, CLIPModel

    local = Path(name).expanduser()
    if local.is_dir():
        cfg_file = local / "config.json"
        if not cfg_file.is_file():
            raise BackboneNotFoundError(
                f"{local} is not a Hugging Face CLIP folder: config.json is missing (nor a run "
                "folder: encoder.json is missing)"
            )
        try:
            model_type = json.loads(cfg_file.read_text()).get("model_type")
        except json.JSONDecodeError as exc:
            raise BackboneError(f"{cfg_file}: not valid JSON ({exc})") from None
        if model_type != "clip":
            raise BackboneError(
                f"{cfg_file}: model_type is {model_type!r}, expected 'clip' (a "
                "transformers CLIPModel folder)"
            )
        source = str(local)
    else:
        if _offline():
            raise BackboneNotFoundError(
                f"pretrained {name!r} is not a local folder, so it was taken as a Hugging Face "
                "hub id, but HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE forbids downloads; pass a "
                "local CLIP folder, an OpenAI .pt or a CLIP4Clip checkpoint instead"
            )
        source = name
    try:
        config = CLIPConfig.from_pretrained(source)
        config.text_config.projection_dim = config.projection_dim
        config.vision_config.projection_dim = config.projection_dim
        tc = config.text_config
        if bos_id is not None:
            tc.bos_token_id = bos_id
        if eos_id is not None:
            tc.eos_token_id = eos_id
        if pad_id is not None:
            tc.pad_token_id = pad_id
        model = CLIPModel.from_pretrained(
            source,
            config=config,
            dtype=torch.float32,
            attn_implementation="eager" if eager_attention else "sdpa",
        )
    except OSError as exc:
        raise BackboneNotFoundError(
            f"pretrained {name!r}: could not load a CLIP model ({exc})"
        ) from exc
    legacy = eos_id is None and tc.eos_token_id == 2
    if legacy:
        log.warning(
            "%s: text_config.eos_token_id is the legacy value 2; sentence vectors are read "
            "at argmax(ids) (pass eos_id to use the tokenizer's EOT id)",
            name,
        )
    encoder = HFClipEncoder(
        model, skip_padded_frames=skip_padded_frames, legacy_argmax_pooling=legacy
    )
    return LoadedEncoder(encoder, {}, "hf", name)


def _load_openai(
    path: Path, *, eager_attention: bool, bos_id: int | None, eos_id: int | None,
    pad_id: int | None, skip_padded_frames: bool,
) -> LoadedEncoder:
    """An OpenAI CLIP ``.pt`` (TorchScript archive or state dict) or ``.safetensors`` file."""
    from tvr.models import openai_clip
    from tvr.models.importers import CheckpointImportError, clip_model_from_hf_state

    sd = openai_clip.load_openai_clip_state(path)
    config = openai_clip.openai_config_from_state(
        sd, bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id
    )
    hf_sd, report = openai_clip.convert_openai_to_hf(sd, config)
    if not report.ok:
        raise CheckpointImportError(f"{path}: {report.summary()}")
    model = clip_model_from_hf_state(
        hf_sd, config, source=str(path),
        attn_implementation="eager" if eager_attention else "sdpa",
    )
    log.info("imported OpenAI CLIP %s (%s)", path, report.summary())
    encoder = HFClipEncoder(model, skip_padded_frames=skip_padded_frames)
    return LoadedEncoder(encoder, {}, "openai", str(path))


def _load_clip4clip(
    path: Path, *, expect_frames: int | None, expect_words: int | None, eager_attention: bool,
    bos_id: int | None, eos_id: int | None, pad_id: int | None, skip_padded_frames: bool,
) -> LoadedEncoder:
    """The CLIP part of a CLIP4Clip-family checkpoint; its head tensors -> head state."""
    from tvr.models.clip4clip import load_clip4clip_checkpoint
    from tvr.models.importers import CheckpointImportError, clip_model_from_hf_state

    hf_sd, head_state, report = load_clip4clip_checkpoint(
        path, expect_frames=expect_frames, expect_words=expect_words
    )
    if report.missing:
        raise CheckpointImportError(
            f"{path}: CLIP keys missing from the checkpoint: {report.missing}"
        )
    config = report.config
    tc = config.text_config
    for attr, value in (("bos_token_id", bos_id), ("eos_token_id", eos_id),
                        ("pad_token_id", pad_id)):
        if value is not None:
            setattr(tc, attr, value)
    model = clip_model_from_hf_state(
        hf_sd, config, source=str(path),
        attn_implementation="eager" if eager_attention else "sdpa",
    )
    for note in report.notes:
        log.info("%s: %s", path, note)
    encoder = HFClipEncoder(model, skip_padded_frames=skip_padded_frames)
    return LoadedEncoder(encoder, head_state, "clip4clip", str(path))


# --------------------------------------------------------------------------------------------
# The entry points
# --------------------------------------------------------------------------------------------


def load_encoder(
    source: str | Path,
    *,
    bos_id: int | None = None,
    eos_id: int | None = None,
    pad_id: int | None = None,
    expect_frames: int | None = None,
    expect_words: int | None = None,
    eager_attention: bool = False,
    skip_padded_frames: bool = False,
) -> LoadedEncoder:
    """Load the backbone ``source`` names, whatever its kind (module docstring).

    Args:
        source: a run folder, an HF CLIP folder or hub id, an OpenAI CLIP file or a CLIP4Clip
            checkpoint.
        bos_id, eos_id, pad_id: the tokenizer's special ids, written into the text config of
            foreign weights (a run folder keeps its own).
        expect_frames, expect_words: N_f and N_w the run uses; a CLIP4Clip checkpoint's X-CLIP
            matrices and frame position table must fit them.
        eager_attention: eager attention (attention maps) instead of SDPA.
        skip_padded_frames: as in :class:`HFClipEncoder` (a run folder keeps its own).

    Raises:
        BackboneError: an unsupported source or weights that do not fit (path named).
        BackboneNotFoundError: nothing at the path and not a hub id, or a hub id offline.
        CheckpointImportError: a foreign file that cannot be read or mapped (file and key named).
    """
    name = str(source).strip()
    return _load_kind(
        source_kind(name), name, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id,
        expect_frames=expect_frames, expect_words=expect_words, eager_attention=eager_attention,
        skip_padded_frames=skip_padded_frames,
    )


def _load_kind(
    kind: str, name: str, *, bos_id: int | None = None, eos_id: int | None = None,
    pad_id: int | None = None, expect_frames: int | None = None, expect_words: int | None = None,
    eager_attention: bool = False, skip_padded_frames: bool = False,
) -> LoadedEncoder:
    """:func:`load_encoder` once the kind is known (detected once, files read once more)."""
    path = Path(name).expanduser()
    if kind == "run":
        return _load_run(path, eager_attention=eager_attention)
    ids: dict[str, Any] = {"bos_id": bos_id, "eos_id": eos_id, "pad_id": pad_id,
                           "eager_attention": eager_attention,
                           "skip_padded_frames": skip_padded_frames}
    if kind == "hf":
        return _load_hf(name, **ids)
    if kind == "openai":
        return _load_openai(path, **ids)
    return _load_clip4clip(path, expect_frames=expect_frames, expect_words=expect_words, **ids)


def _tokenizer_ids(tokenizer: Any) -> tuple[int, int, int, int]:
    """``(vocab_size, bos, eos, pad)`` of a HF-style tokenizer (``len()``, ``*_token_id``)."""

    def pick(*names: str) -> int | None:
        for name in names:
            value = getattr(tokenizer, name, None)
            if isinstance(value, int):
                return value
        return None

    bos = pick("bos_token_id", "bos_id")
    eos = pick("eos_token_id", "eos_id")
    pad = pick("pad_token_id", "pad_id")
    try:
        vocab = len(tokenizer)
    except TypeError:
        vocab = pick("vocab_size")
    if vocab is None or bos is None or eos is None:
        raise BackboneError(
            f"tokenizer {type(tokenizer).__name__} does not expose len() / vocab_size, "
            f"bos_token_id and eos_token_id (got vocab={vocab}, bos={bos}, eos={eos})"
        )
    return vocab, bos, eos, eos if pad is None else pad


def _count(module: nn.Module) -> str:
    return f"{sum(p.numel() for p in module.parameters()) / 1e6:.2f}M"


def build_encoder(cfg: ExperimentConfig, tokenizer: Any) -> LoadedEncoder:
    """Build the backbone ``cfg`` asks for.

    ``cfg.model.pretrained`` empty: a from-scratch CLIP of ``cfg.model.clip``'s size, vocabulary
    and special ids from ``tokenizer``, image size ``cfg.data.image_size``. Otherwise
    :func:`load_encoder` loads it (a run folder as saved; foreign weights with the tokenizer's
    special ids, then checked against ``cfg.data`` and the tokenizer's vocabulary).

    ``tokenizer`` is any HF-style tokenizer (``len()``, ``bos_token_id``, ``eos_token_id``,
    ``pad_token_id``), or None for a run folder.

    Raises:
        BackboneError: no tokenizer for a from-scratch build, lengths that do not fit
            (``data.max_words``, ``data.image_size``), a tokenizer larger than the vocabulary,
            or any error of :func:`load_encoder`.
    """
    pretrained = cfg.model.pretrained.strip()
    kind = source_kind(pretrained) if pretrained else "scratch"
    if kind == "run":
        return _load_kind(kind, pretrained)
    ids: dict[str, int] = {}
    vocab = None
    if tokenizer is not None:
        vocab, bos, eos, pad = _tokenizer_ids(tokenizer)
        ids = {"bos_id": bos, "eos_id": eos, "pad_id": pad}
    encoder_cls = get("encoder", cfg.model.encoder)
    if not pretrained:
        if tokenizer is None:
            raise BackboneError(
                "model.pretrained is empty (train from scratch), which needs a tokenizer"
            )
        clip_cfg = cfg.model.clip
        if cfg.data.max_words > clip_cfg.max_positions:
            raise BackboneError(
                f"data.max_words={cfg.data.max_words} exceeds "
                f"model.clip.max_positions={clip_cfg.max_positions}"
            )
        encoder = encoder_cls.from_config(
            clip_cfg,
            vocab_size=vocab,
            image_size=cfg.data.image_size,
            max_positions=clip_cfg.max_positions,
            **ids,
        )
        log.info("built a from-scratch CLIP (%s parameters)", _count(encoder))
        return LoadedEncoder(encoder)
    if not issubclass(encoder_cls, HFClipEncoder):
        raise BackboneError(
            f"model.encoder={cfg.model.encoder!r} cannot load model.pretrained={pretrained!r}: "
            "foreign weights load onto 'hf_clip' only"
        )
    loaded = _load_kind(
        kind, pretrained, expect_frames=cfg.data.num_frames, expect_words=cfg.data.max_words,
        **ids,
    )
    loaded.encoder.check_fits(cfg, vocab)
    return loaded
