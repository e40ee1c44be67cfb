"""OpenAI CLIP checkpoints -> Hugging Face ``CLIPModel`` tensors (data_and_metrics.md §13).

An OpenAI CLIP file (``ViT-B-32.pt`` ...) is a TorchScript archive (read by
:mod:`tvr.models.torchscript_reader`, without running its code), a plain state dict saved with
``torch.save`` (read with ``weights_only=True``) or a ``.safetensors`` conversion.
:func:`load_openai_clip_state` reads it, :func:`openai_config_from_state` infers the architecture
from tensor shapes and :func:`convert_openai_to_hf` renames and reshapes the tensors (§13.2).
(The inverse mapping, which the tests use to write OpenAI-layout files from a tiny HF model, is
in ``tests/helpers_importers.py``.)
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tvr.models.importers import (
    CheckpointImportError,
    ImportReport,
    check_file,
    to_fp32,
    torch_load_state,
)
from tvr.models.torchscript_reader import is_torchscript_archive, read_torchscript_state

log = logging.getLogger(__name__)

# Non-tensor metadata stored in OpenAI's TorchScript archives.
OPENAI_METADATA_KEYS: tuple[str, ...] = ("input_resolution", "context_length", "vocab_size")

# LayerNorm eps of OpenAI's CLIP towers.
OPENAI_LAYER_NORM_EPS: float = 1e-5


def load_openai_clip_state(path: str | Path) -> dict[str, Tensor]:
    """Read an OpenAI CLIP checkpoint (TorchScript archive, state dict or ``.safetensors``).

    TorchScript archives are read by :func:`read_torchscript_state`, which never runs their code.

    The metadata entries ``input_resolution``, ``context_length`` and ``vocab_size`` are dropped,
    as is a ``module.`` prefix. Tensors keep their stored dtype (fp16 in OpenAI's archives).

    Raises:
        CheckpointImportError: missing or unreadable file, or a file that holds no tensors.
    """
    p = check_file(path)
    sd: dict[str, Any]
    if is_torchscript_archive(p):
        sd = dict(read_torchscript_state(p))  # never torch.jit.load: that runs archive code
    elif p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            sd = dict(load_file(str(p), device="cpu"))
        except Exception as exc:  # safetensors raises SafetensorError, OSError, ...
            raise CheckpointImportError(
                f"{p}: cannot be read as safetensors ({type(exc).__name__}: {exc})"
            ) from exc
    else:
        sd = torch_load_state(p)
    out: dict[str, Tensor] = {}
    for key, value in sd.items():
        name = key[len("module.") :] if key.startswith("module.") else key
        if name in OPENAI_METADATA_KEYS:
            continue
        if not isinstance(value, Tensor):
            raise CheckpointImportError(
                f"{p}: entry {key!r} is a {type(value).__name__}, expected a tensor"
            )
        out[name] = value
    if not out:
        raise CheckpointImportError(f"{p}: holds no tensors")
    return out



_BLOCK_RE = re.compile(r"^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)$")

# Per-block parameters that map one-to-one (OpenAI suffix -> HF suffix).
_BLOCK_SIMPLE: dict[str, str] = {
    "attn.out_proj.weight": "self_attn.out_proj.weight",
    "attn.out_proj.bias": "self_attn.out_proj.bias",
    "ln_1.weight": "layer_norm1.weight",
    "ln_1.bias": "layer_norm1.bias",
    "ln_2.weight": "layer_norm2.weight",
    "ln_2.bias": "layer_norm2.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight",
    "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight",
    "mlp.c_proj.bias": "mlp.fc2.bias",
}

# Top-level keys (OpenAI -> HF, transpose?).
_TOP_LEVEL: dict[str, tuple[str, bool]] = {
    "token_embedding.weight": ("text_model.embeddings.token_embedding.weight", False),
    "positional_embedding": ("text_model.embeddings.position_embedding.weight", False),
    "ln_final.weight": ("text_model.final_layer_norm.weight", False),
    "ln_final.bias": ("text_model.final_layer_norm.bias", False),
    "text_projection": ("text_projection.weight", True),
    "visual.conv1.weight": ("vision_model.embeddings.patch_embedding.weight", False),
    "visual.class_embedding": ("vision_model.embeddings.class_embedding", False),
    "visual.positional_embedding": ("vision_model.embeddings.position_embedding.weight", False),
    "visual.ln_pre.weight": ("vision_model.pre_layrnorm.weight", False),
    "visual.ln_pre.bias": ("vision_model.pre_layrnorm.bias", False),
    "visual.ln_post.weight": ("vision_model.post_layernorm.weight", False),
    "visual.ln_post.bias": ("vision_model.post_layernorm.bias", False),
    "visual.proj": ("visual_projection.weight", True),
    "logit_scale": ("logit_scale", False),
}


def _count_blocks(sd: Mapping[str, Tensor], prefix: str) -> int:
    pat = re.compile(rf"^{re.escape(prefix)}(\d+)\.attn\.in_proj_weight$")
    idx = {int(m.group(1)) for k in sd if (m := pat.match(k))}
    if idx and idx != set(range(len(idx))):
        raise CheckpointImportError(
            f"blocks under {prefix!r} are not numbered 0..N-1: found {sorted(idx)}"
        )
    return len(idx)


def _require(sd: Mapping[str, Tensor], key: str, what: str) -> Tensor:
    if key not in sd:
        raise CheckpointImportError(
            f"cannot infer the CLIP architecture: key {key!r} ({what}) is missing"
        )
    return sd[key]


def openai_config_from_state(
    sd: Mapping[str, Tensor],
    *,
    text_heads: int | None = None,
    vision_heads: int | None = None,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
) -> Any:
    """Infer a ``transformers.CLIPConfig`` from an OpenAI-format ViT state dict (§13.1).

    Widths, depths, patch size, image size (from the vision position table), context length,
    vocabulary and projection dim come from tensor shapes. Heads are ``width // 64`` as in
    OpenAI's code unless given (shapes cannot tell them apart). The activation is ``quick_gelu``
    and LayerNorm eps 1e-5. Special-token ids default to CLIP's convention (the last two ids are
    ``<|startoftext|>`` and ``<|endoftext|>``, padding with ``<|endoftext|>``); callers with a
    tokenizer should pass its ids.

    Raises:
        CheckpointImportError: a ResNet CLIP (not supported), a missing key, or inconsistent
        shapes; the message names the key.
    """
    from transformers import CLIPConfig

    if any(k.startswith(("visual.layer1.", "visual.attnpool.")) for k in sd):
        raise CheckpointImportError(
            "this is a ResNet CLIP (visual.layer1 / visual.attnpool keys); only ViT CLIP "
            "checkpoints can be mapped onto transformers CLIPModel"
        )
    conv1 = _require(sd, "visual.conv1.weight", "patch embedding")
    vpos = _require(sd, "visual.positional_embedding", "vision position table")
    tproj = _require(sd, "text_projection", "text projection")
    vproj = _require(sd, "visual.proj", "visual projection")
    tok = _require(sd, "token_embedding.weight", "token embedding")
    tpos = _require(sd, "positional_embedding", "text position table")

    vision_width, patch = int(conv1.shape[0]), int(conv1.shape[-1])
    grid = math.isqrt(int(vpos.shape[0]) - 1)
    if grid * grid + 1 != vpos.shape[0]:
        raise CheckpointImportError(
            f"visual.positional_embedding has {vpos.shape[0]} rows; expected grid*grid + 1"
        )
    text_width = int(tok.shape[1])
    embed_dim = int(tproj.shape[1])
    if tuple(vproj.shape) != (vision_width, embed_dim) or tproj.shape[0] != text_width:
        raise CheckpointImportError(
            f"projection shapes disagree: text_projection {tuple(tproj.shape)}, visual.proj "
            f"{tuple(vproj.shape)}, text width {text_width}, vision width {vision_width}"
        )
    text_layers = _count_blocks(sd, "transformer.resblocks.")
    vision_layers = _count_blocks(sd, "visual.transformer.resblocks.")
    if text_layers == 0 or vision_layers == 0:
        raise CheckpointImportError(
            f"found {text_layers} text and {vision_layers} vision blocks; both towers need >= 1 "
            "(keys transformer.resblocks.N.attn.in_proj_weight / visual.transformer...)"
        )
    text_mlp = int(_require(sd, "transformer.resblocks.0.mlp.c_fc.weight", "text MLP").shape[0])
    vision_mlp = int(
        _require(sd, "visual.transformer.resblocks.0.mlp.c_fc.weight", "vision MLP").shape[0]
    )
    t_heads = text_heads or max(text_width // 64, 1)
    v_heads = vision_heads or max(vision_width // 64, 1)
    for name, width, heads in (("text", text_width, t_heads), ("vision", vision_width, v_heads)):
        if width % heads:
            raise CheckpointImportError(f"{name} width {width} is not divisible by {heads} heads")
    vocab = int(tok.shape[0])
    eos = vocab - 1 if eos_token_id is None else eos_token_id
    bos = vocab - 2 if bos_token_id is None else bos_token_id
    pad = eos if pad_token_id is None else pad_token_id
    logit_scale = float(sd["logit_scale"]) if "logit_scale" in sd else math.log(1 / 0.07)
    return CLIPConfig(
        text_config=dict(
            vocab_size=vocab,
            hidden_size=text_width,
            intermediate_size=text_mlp,
            num_hidden_layers=text_layers,
            num_attention_heads=t_heads,
            max_position_embeddings=int(tpos.shape[0]),
            hidden_act="quick_gelu",
            layer_norm_eps=OPENAI_LAYER_NORM_EPS,
            projection_dim=embed_dim,
            bos_token_id=bos,
            eos_token_id=eos,
            pad_token_id=pad,
        ),
        vision_config=dict(
            hidden_size=vision_width,
            intermediate_size=vision_mlp,
            num_hidden_layers=vision_layers,
            num_attention_heads=v_heads,
            image_size=grid * patch,
            patch_size=patch,
            num_channels=int(conv1.shape[1]),
            hidden_act="quick_gelu",
            layer_norm_eps=OPENAI_LAYER_NORM_EPS,
            projection_dim=embed_dim,
        ),
        projection_dim=embed_dim,
        logit_scale_init_value=logit_scale,
    )


def _split_in_proj(t: Tensor, key: str) -> tuple[Tensor, Tensor, Tensor]:
    if t.shape[0] % 3:
        raise CheckpointImportError(f"{key}: first dim {t.shape[0]} is not divisible by 3 (q,k,v)")
    q, k, v = t.chunk(3, dim=0)
    return q.contiguous(), k.contiguous(), v.contiguous()


def map_block_key(
    key: str, value: Tensor, prefix: str, rest: str, attn: str, simple: Mapping[str, str]
) -> list[tuple[str, Tensor]] | None:
    """Target (name, tensor) pairs for one parameter ``rest`` of a transformer block.

    The fused ``attn.in_proj_*`` is split into ``{prefix}{attn}.{q,k,v}_proj.*``; the other
    parameters are renamed one-to-one by ``simple``; ``None`` when ``rest`` is unknown.
    """
    if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
        kind = "weight" if rest.endswith("weight") else "bias"
        q, k, v = _split_in_proj(value, key)
        return [(f"{prefix}{attn}.{p}_proj.{kind}", t) for p, t in zip("qkv", (q, k, v))]
    if rest in simple:
        return [(prefix + simple[rest], value)]
    return None


def _map_openai_key(key: str, value: Tensor) -> list[tuple[str, Tensor]] | None:
    """HF (name, tensor) pairs for one OpenAI key, or None when the key is unknown."""
    if key in _TOP_LEVEL:
        name, transpose = _TOP_LEVEL[key]
        return [(name, value.t().contiguous() if transpose else value)]
    m = _BLOCK_RE.match(key)
    if m is None:
        return None
    tower = "vision_model" if m.group(1) else "text_model"
    prefix = f"{tower}.encoder.layers.{m.group(2)}."
    return map_block_key(key, value, prefix, m.group(3), "self_attn", _BLOCK_SIMPLE)


def _expected_hf_shapes(config: Any) -> dict[str, torch.Size]:
    """Parameter names and shapes of ``CLIPModel(config)``, built on the meta device (no memory)."""
    from transformers import CLIPModel

    with torch.device("meta"):
        model = CLIPModel(config)
    return {k: v.shape for k, v in model.state_dict().items()}



def convert_openai_to_hf(
    sd: Mapping[str, Tensor], config: Any | None = None
) -> tuple[dict[str, Tensor], ImportReport]:
    """Map an OpenAI-format ViT CLIP state dict onto ``CLIPModel`` names (§13.2).

    ``attn.in_proj_*`` is split into q, k, v (in that order along dim 0); ``text_projection``
    and ``visual.proj`` are transposed (HF uses bias-free Linear layers); ``visual.ln_pre`` maps
    to HF's ``pre_layrnorm``. Every floating tensor is cast to fp32.

    Args:
        sd: OpenAI key names (no ``module.``/``clip.`` prefix).
        config: the target ``CLIPConfig``; inferred with :func:`openai_config_from_state` if None.

    Returns:
        ``(hf_state_dict, report)``: ``report.missing`` names HF keys nothing filled,
        ``report.unexpected`` the OpenAI keys that were not mapped; ``report.config`` holds the
        config used.

    Raises:
        CheckpointImportError: when a mapped tensor's shape does not fit the target config.
    """
    config = config if config is not None else openai_config_from_state(sd)
    expected = _expected_hf_shapes(config)
    report = ImportReport(config=config)
    out: dict[str, Tensor] = {}
    cast = False
    for key, value in sd.items():
        pairs = _map_openai_key(key, value)
        if pairs is None:
            report.unexpected.append(key)
            continue
        for name, tensor in pairs:
            if name not in expected:
                report.unexpected.append(key)
                break
            if tensor.shape != expected[name]:
                raise CheckpointImportError(
                    f"{key} -> {name}: shape {tuple(tensor.shape)} does not fit the target "
                    f"{tuple(expected[name])}"
                )
            cast = cast or (tensor.is_floating_point() and tensor.dtype != torch.float32)
            out[name] = to_fp32(tensor).contiguous()
            report.converted.append(name)
    report.missing = [k for k in expected if k not in out]
    if cast:
        report.notes.append("floating tensors cast to fp32")
    return out, report

