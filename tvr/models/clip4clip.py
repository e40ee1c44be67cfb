"""CLIP4Clip-family checkpoints (CLIP4Clip, DRL, X-CLIP; data_and_metrics.md §14).

A ``pytorch_model.bin.<epoch>`` holds the CLIP weights under ``clip.`` plus the temporal
transformer and head parameters. :func:`load_clip4clip_checkpoint` splits the file into an HF
CLIP state dict (through :func:`tvr.models.openai_clip.convert_openai_to_hf`) and a *head state*
with the project's seqTransf naming; the seqTransf module is built with exactly these parameter
names:

==============================================================  =====================================
CLIP4Clip key                                                   head-state key
==============================================================  =====================================
``frame_position_embeddings.weight`` [P, D]                     ``frame_position.weight``
``transformerClip.resblocks.N.attn.in_proj_weight`` [3D, D]     ``blocks.N.attn.{q,k,v}_proj.weight``
``transformerClip.resblocks.N.attn.in_proj_bias`` [3D]          ``blocks.N.attn.{q,k,v}_proj.bias``
``transformerClip.resblocks.N.attn.out_proj.{weight,bias}``     ``blocks.N.attn.out_proj.{weight,bias}``
``transformerClip.resblocks.N.ln_1.*`` / ``ln_2.*``             ``blocks.N.ln_1.*`` / ``blocks.N.ln_2.*``
``transformerClip.resblocks.N.mlp.c_fc.*`` / ``c_proj.*``       ``blocks.N.mlp.fc1.*`` / ``blocks.N.mlp.fc2.*``
``text_weight_fc.I.*`` / ``video_weight_fc.I.*`` (DRL)          ``text_weight.I.*`` / ``video_weight.I.*``
X-CLIP ``global_mat_weight``, ``word_logit_weight``, ...        unchanged names
==============================================================  =====================================

The temporal blocks' LayerNorms use eps 1e-12 in CLIP4Clip (the CLIP towers use 1e-5); the head
module must be built with that eps to reproduce the reference. The file is read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from tvr.models.importers import (
    CheckpointImportError,
    ImportReport,
    check_file,
    to_fp32,
    torch_load_state,
)
from tvr.models.openai_clip import (
    OPENAI_LAYER_NORM_EPS,
    OPENAI_METADATA_KEYS,
    convert_openai_to_hf,
    map_block_key,
)

log = logging.getLogger(__name__)

# CLIP4Clip's temporal transformer LayerNorm eps (the CLIP towers use 1e-5).
SEQTRANSF_LAYER_NORM_EPS: float = 1e-12

# X-CLIP's learnable matrices and the axis length each is tied to ("D", "words", "frames").
XCLIP_MATRICES: dict[str, str] = {
    "global_mat_weight": "D",
    "local_mat_weight": "D",
    "word_logit_weight": "words",
    "word_mat_weight": "words",
    "word_mat_weight2": "words",
    "frame_logit_weight": "frames",
    "frame_mat_weight": "frames",
    "frame_mat_weight2": "frames",
}




_SEQ_BLOCK_RE = re.compile(r"^transformerClip\.resblocks\.(\d+)\.(.+)$")
_SEQ_BLOCK_SIMPLE: dict[str, str] = {
    "attn.out_proj.weight": "attn.out_proj.weight",
    "attn.out_proj.bias": "attn.out_proj.bias",
    "ln_1.weight": "ln_1.weight",
    "ln_1.bias": "ln_1.bias",
    "ln_2.weight": "ln_2.weight",
    "ln_2.bias": "ln_2.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight",
    "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight",
    "mlp.c_proj.bias": "mlp.fc2.bias",
}
_WEIGHT_FC_RE = re.compile(r"^(text|video)_weight_fc\.(\d+)\.(weight|bias)$")


def _map_head_key(key: str, value: Tensor) -> list[tuple[str, Tensor]] | None:
    """Head-state (name, tensor) pairs for one non-CLIP CLIP4Clip key, or None if unknown."""
    if key == "frame_position_embeddings.weight":
        return [("frame_position.weight", value)]
    m = _SEQ_BLOCK_RE.match(key)
    if m:
        return map_block_key(
            key, value, f"blocks.{m.group(1)}.", m.group(2), "attn", _SEQ_BLOCK_SIMPLE
        )
    m = _WEIGHT_FC_RE.match(key)
    if m:
        return [(f"{m.group(1)}_weight.{m.group(2)}.{m.group(3)}", value)]
    if key in XCLIP_MATRICES:
        return [(key, value)]
    return None


def _check_xclip_shapes(
    path: Path,
    head: Mapping[str, Tensor],
    expect_frames: int | None,
    expect_words: int | None,
) -> None:
    expected = {"frames": expect_frames, "words": expect_words}
    for key, axis in XCLIP_MATRICES.items():
        if key not in head:
            continue
        shape = tuple(head[key].shape)
        n = expected.get(axis)
        if n is not None and shape != (n, n):
            raise CheckpointImportError(
                f"{path}: X-CLIP matrix {key!r} has shape {shape}, but the configured "
                f"{'N_f (data.num_frames)' if axis == 'frames' else 'N_w (data.max_words)'} is "
                f"{n}; X-CLIP checkpoints only fit the text and frame lengths they were "
                "trained with"
            )


def load_clip4clip_checkpoint(
    path: str | Path,
    *,
    expect_frames: int | None = None,
    expect_words: int | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor], ImportReport]:
    """Read a CLIP4Clip-family checkpoint (``pytorch_model.bin.<epoch>``; DRL, X-CLIP too).

    Steps (data_and_metrics.md §14): drop a ``module.`` prefix; cast to fp32; strip ``clip.``
    and map the CLIP weights through :func:`convert_openai_to_hf`; map the temporal transformer,
    frame position table, DRL token-weight MLPs and X-CLIP matrices into the head state (names in
    the module docstring). Keys of other heads (seqLSTM, tightTransf, the 3-D patch
    ``clip.visual.conv2.weight``) are reported as unexpected.

    Args:
        path: the checkpoint file, read with ``torch.load(weights_only=True)``.
        expect_frames: N_f the run uses; X-CLIP frame matrices must be N_f x N_f and the frame
            position table needs at least N_f rows.
        expect_words: N_w the run uses; X-CLIP word matrices must be N_w x N_w.

    Returns:
        ``(hf_clip_state, head_state, report)``; ``report.config`` is the inferred CLIPConfig,
        ``report.missing`` lists CLIP keys (HF names) absent from the file.

    Raises:
        CheckpointImportError: unreadable file, no CLIP weights, or a shape that does not fit
        the expected frame/word counts.
    """
    p = check_file(path)
    raw = torch_load_state(p)
    clip_sd: dict[str, Tensor] = {}
    head: dict[str, Tensor] = {}
    report = ImportReport()
    cast = False
    for key, value in raw.items():
        name = key[len("module.") :] if key.startswith("module.") else key
        if not isinstance(value, Tensor):
            report.unexpected.append(name)
            continue
        cast = cast or (value.is_floating_point() and value.dtype != torch.float32)
        value = to_fp32(value)
        if name.startswith("clip."):
            clip_sd[name[len("clip.") :]] = value
            continue
        pairs = _map_head_key(name, value)
        if pairs is None:
            report.unexpected.append(name)
            continue
        for target, tensor in pairs:
            head[target] = tensor.contiguous()
            report.converted.append(target)
    if not clip_sd:
        raise CheckpointImportError(
            f"{p}: no 'clip.*' keys; this does not look like a CLIP4Clip-family checkpoint "
            "(an OpenAI CLIP file should end in .pt)"
        )
    for key in OPENAI_METADATA_KEYS:
        clip_sd.pop(key, None)
    try:
        hf_sd, clip_report = convert_openai_to_hf(clip_sd)
    except CheckpointImportError as exc:
        raise CheckpointImportError(f"{p}: {exc}") from exc
    report.config = clip_report.config
    report.converted = clip_report.converted + report.converted
    report.missing = clip_report.missing
    report.unexpected = [f"clip.{k}" for k in clip_report.unexpected] + report.unexpected
    if cast:
        report.notes.append("fp16/bf16 tensors cast to fp32")
    if any(k.startswith("blocks.") for k in head):
        report.notes.append(
            f"temporal transformer blocks imported; they use LayerNorm eps "
            f"{SEQTRANSF_LAYER_NORM_EPS:g} (CLIP towers: {OPENAI_LAYER_NORM_EPS:g})"
        )
    if "clip.visual.conv2.weight" in report.unexpected:
        report.notes.append("3-D patch embedding (clip.visual.conv2.weight) is not supported")
    _check_xclip_shapes(p, head, expect_frames, expect_words)
    pos = head.get("frame_position.weight")
    if expect_frames is not None and pos is not None and pos.shape[0] < expect_frames:
        raise CheckpointImportError(
            f"{p}: frame_position_embeddings has {pos.shape[0]} rows, fewer than the "
            f"{expect_frames} frames the run samples"
        )
    if report.unexpected:
        log.warning("%s: unmapped keys: %s", p, ", ".join(report.unexpected))
    return hf_sd, head, report

