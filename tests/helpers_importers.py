"""Test-side CLIP conversion helpers: the HF -> OpenAI exporter (the inverse of
:func:`tvr.models.openai_clip.convert_openai_to_hf`, used to write OpenAI-layout checkpoints from
a tiny random HF model), deterministic dummy inputs, and a logit comparison of a reference
forward with a converted model.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from tvr.models.importers import CheckpointImportError
from tvr.models.openai_clip import _BLOCK_SIMPLE, _TOP_LEVEL

log = logging.getLogger(__name__)


def convert_hf_to_openai(hf_sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of :func:`convert_openai_to_hf`: ``CLIPModel`` names -> OpenAI names.

    q, k, v projections are concatenated into ``in_proj_*``; the projections are transposed.
    ``position_ids`` buffers are skipped.

    Raises:
        CheckpointImportError: an HF key with no OpenAI counterpart, or a layer missing one of
        its q/k/v projections.
    """
    inverse_top = {hf: (oa, tr) for oa, (hf, tr) in _TOP_LEVEL.items()}
    inverse_block = {hf: oa for oa, hf in _BLOCK_SIMPLE.items()}
    layer_re = re.compile(r"^(text_model|vision_model)\.encoder\.layers\.(\d+)\.(.+)$")
    out: dict[str, Tensor] = {}
    qkv: dict[str, dict[str, Tensor]] = {}
    for name, value in hf_sd.items():
        if name.endswith("position_ids"):
            continue
        if name in inverse_top:
            oa, transpose = inverse_top[name]
            out[oa] = value.t().contiguous() if transpose else value
            continue
        m = layer_re.match(name)
        if m is None:
            raise CheckpointImportError(f"HF key {name!r} has no OpenAI counterpart")
        prefix = ("visual." if m.group(1) == "vision_model" else "") + (
            f"transformer.resblocks.{m.group(2)}."
        )
        rest = m.group(3)
        qm = re.match(r"^self_attn\.([qkv])_proj\.(weight|bias)$", rest)
        if qm:
            target = f"{prefix}attn.in_proj_{qm.group(2)}"
            qkv.setdefault(target, {})[qm.group(1)] = value
        elif rest in inverse_block:
            out[prefix + inverse_block[rest]] = value
        else:
            raise CheckpointImportError(f"HF key {name!r} has no OpenAI counterpart")
    for target, parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise CheckpointImportError(f"{target}: found only {sorted(parts)} of q, k, v")
        out[target] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def dummy_clip_inputs(config: Any, batch: int = 2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Deterministic ``(pixel_values [B,3,H,W], input_ids [B,L])`` for a conversion check.

    Each id row is ``[bos, random ids..., eos, pad...]`` with the random ids below both special
    ids, so "argmax id" (OpenAI) and "first eos" (HF) pooling agree.

    Shapes:
        pixel_values: ``[batch, 3, image_size, image_size]``; input_ids: ``[batch, L]`` with
        ``L = min(16, max_position_embeddings)``.
    """
    g = torch.Generator().manual_seed(seed)
    tc, vc = config.text_config, config.vision_config
    length = min(16, tc.max_position_embeddings)
    low = min(tc.bos_token_id, tc.eos_token_id)
    ids = torch.randint(0, max(low, 1), (batch, length), generator=g)
    ids[:, 0] = tc.bos_token_id
    for row in range(batch):
        end = max(2, length - 1 - row)  # different lengths per row
        ids[row, end] = tc.eos_token_id
        ids[row, end + 1 :] = tc.pad_token_id if tc.pad_token_id is not None else tc.eos_token_id
    pixels = torch.randn(batch, vc.num_channels, vc.image_size, vc.image_size, generator=g)
    return pixels, ids


def verify_conversion(
    reference: Callable[[Tensor, Tensor], Any],
    model: Any,
    *,
    atol: float = 1e-3,
    batch: int = 2,
    seed: int = 0,
) -> float:
    """Compare image-to-text logits of a reference forward and the HF model on a dummy input.

    Args:
        reference: ``reference(pixel_values [B,3,H,W], input_ids [B,L])`` returning
            ``logits_per_image [B, B]`` (or a tuple whose first item is, like OpenAI's
            ``CLIP.forward``).
        model: the converted ``CLIPModel``.
        atol: the largest absolute logit difference accepted (the reference conversion uses
            1e-3).

    Returns:
        The largest absolute difference.

    Raises:
        CheckpointImportError: when the difference exceeds ``atol``.
    """
    pixels, ids = dummy_clip_inputs(model.config, batch=batch, seed=seed)
    with torch.no_grad():
        ref = reference(pixels, ids)
        if isinstance(ref, tuple | list):
            ref = ref[0]
        ours = model(input_ids=ids, pixel_values=pixels).logits_per_image
    ref = ref.float()
    if ref.shape != ours.shape:
        raise CheckpointImportError(
            f"verification: reference logits {tuple(ref.shape)} vs converted {tuple(ours.shape)}"
        )
    diff = float((ref - ours).abs().max())
    if not diff <= atol:
        raise CheckpointImportError(
            f"verification failed: converted CLIP logits differ from the reference by {diff:.3g} "
            f"(atol {atol:g})"
        )
    log.info("conversion verified: max |logit diff| %.3g <= %g", diff, atol)
    return diff
