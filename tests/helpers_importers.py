"""Test-side CLIP conversion helpers: the HF -> OpenAI exporter (the inverse of
:func:`tvr.models.openai_clip.convert_openai_to_hf`, used to write OpenAI-layout checkpoints from
a tiny random HF model), deterministic dummy inputs, and a logit comparison of a reference
forward with a converted model.

Below them, what the importer tests share (``test_openai_clip``, ``test_torchscript_reader``,
``test_clip4clip``, ``test_importers``, ``test_loading``): the tiny CLIP config, an independent
functional re-implementation of the OpenAI CLIP forward (so a mapping error that round-trips,
e.g. q and k swapped both ways, still fails), writers of TorchScript and CLIP4Clip-family files,
and a booby-trapped TorchScript module. The fixtures built from them live in ``conftest.py``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import CLIPConfig, CLIPModel

from tvr.config import ExperimentConfig
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


# ----------------------------------------------------------------------------- tiny CLIP
VOCAB, BOS, EOS = 64, 62, 63
TEXT_W, VISION_W, EMBED, PATCH, IMAGE, CONTEXT = 64, 128, 32, 8, 32, 16


def tiny_hf_config() -> CLIPConfig:
    """OpenAI-compatible head counts (width // 64): text 1 head, vision 2 heads."""
    return CLIPConfig(
        text_config=dict(vocab_size=VOCAB, hidden_size=TEXT_W, intermediate_size=4 * TEXT_W,
                         num_hidden_layers=2, num_attention_heads=1, max_position_embeddings=CONTEXT,
                         hidden_act="quick_gelu", projection_dim=EMBED, bos_token_id=BOS,
                         eos_token_id=EOS, pad_token_id=EOS),
        vision_config=dict(hidden_size=VISION_W, intermediate_size=4 * VISION_W,
                           num_hidden_layers=2, num_attention_heads=2, image_size=IMAGE,
                           patch_size=PATCH, hidden_act="quick_gelu", projection_dim=EMBED),
        projection_dim=EMBED,
        logit_scale_init_value=3.0,
    )


def tiny_random_clip() -> CLIPModel:
    """The tiny CLIP of :func:`tiny_hf_config`, seeded, with randomised biases and norms."""
    torch.manual_seed(0)
    model = CLIPModel(tiny_hf_config()).eval()
    with torch.no_grad():  # HF initialises biases/LN to constants; randomise so mapping errors show
        for name, p in model.named_parameters():
            if name.endswith("bias") or "layer_norm" in name or "layernorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model


# ----------------------------------------------------------------------- reference forward
def _ref_blocks(x: Tensor, sd: dict[str, Tensor], prefix: str, heads: int,
                attn_mask: Tensor | None = None) -> Tensor:
    """OpenAI ResidualAttentionBlocks (pre-LN, nn.MultiheadAttention layout, QuickGELU)."""
    d = x.shape[-1]
    i = 0
    while f"{prefix}{i}.attn.in_proj_weight" in sd:
        p = f"{prefix}{i}."
        h = F.layer_norm(x, (d,), sd[p + "ln_1.weight"], sd[p + "ln_1.bias"], 1e-5).transpose(0, 1)
        a, _ = F.multi_head_attention_forward(
            h, h, h, d, heads, sd[p + "attn.in_proj_weight"], sd[p + "attn.in_proj_bias"],
            None, None, False, 0.0, sd[p + "attn.out_proj.weight"], sd[p + "attn.out_proj.bias"],
            training=False, need_weights=False, attn_mask=attn_mask,
        )
        x = x + a.transpose(0, 1)
        h = F.layer_norm(x, (d,), sd[p + "ln_2.weight"], sd[p + "ln_2.bias"], 1e-5)
        h = F.linear(h, sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"])
        h = h * torch.sigmoid(1.702 * h)
        x = x + F.linear(h, sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"])
        i += 1
    return x


def ref_encode_text(sd: dict[str, Tensor], ids: Tensor) -> Tensor:
    sd = {k: v.float() for k, v in sd.items()}
    length = ids.shape[1]
    x = sd["token_embedding.weight"][ids] + sd["positional_embedding"][:length]
    causal = torch.full((length, length), float("-inf")).triu_(1)
    x = _ref_blocks(x, sd, "transformer.resblocks.", TEXT_W // 64, causal)
    x = F.layer_norm(x, (TEXT_W,), sd["ln_final.weight"], sd["ln_final.bias"], 1e-5)
    return x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ sd["text_projection"]


def ref_encode_image(sd: dict[str, Tensor], pixels: Tensor) -> Tensor:
    sd = {k: v.float() for k, v in sd.items()}
    x = F.conv2d(pixels, sd["visual.conv1.weight"], stride=PATCH)  # [B, W, g, g]
    x = x.flatten(2).transpose(1, 2)  # [B, g*g, W]
    cls = sd["visual.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + sd["visual.positional_embedding"]
    x = F.layer_norm(x, (VISION_W,), sd["visual.ln_pre.weight"], sd["visual.ln_pre.bias"], 1e-5)
    x = _ref_blocks(x, sd, "visual.transformer.resblocks.", VISION_W // 64)
    x = F.layer_norm(x[:, 0], (VISION_W,), sd["visual.ln_post.weight"], sd["visual.ln_post.bias"],
                     1e-5)
    return x @ sd["visual.proj"]


def ref_logits(sd: dict[str, Tensor]):
    def forward(pixels: Tensor, ids: Tensor) -> Tensor:
        img = F.normalize(ref_encode_image(sd, pixels), dim=-1)
        txt = F.normalize(ref_encode_text(sd, ids), dim=-1)
        return sd["logit_scale"].float().exp() * img @ txt.t()

    return forward


def embeddings(model: CLIPModel, seed: int = 0) -> tuple[Tensor, Tensor]:
    pixels, ids = dummy_clip_inputs(model.config, batch=3, seed=seed)
    with torch.no_grad():
        return (model.get_text_features(input_ids=ids).pooler_output,
                model.get_image_features(pixel_values=pixels).pooler_output)


def save_torchscript(sd: dict[str, Tensor], path) -> None:
    """A TorchScript archive whose state_dict() has exactly ``sd``'s names (like OpenAI's)."""
    root = nn.Module()
    for key, tensor in sd.items():
        *parts, leaf = key.split(".")
        mod = root
        for part in parts:
            if part not in mod._modules:
                mod.add_module(part, nn.Module())
            mod = mod._modules[part]
        if tensor.is_floating_point():
            mod.register_parameter(leaf, nn.Parameter(tensor.clone(), requires_grad=False))
        else:
            mod.register_buffer(leaf, tensor.clone())
    torch.jit.script(root).save(str(path))


class EvilModule(nn.Module):
    """A scripted module whose exported ``__setstate__`` writes a file when torch.jit.load runs."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(2), requires_grad=False)
        self.target = target

    def forward(self, x: Tensor) -> Tensor:
        return x * self.w

    @torch.jit.export
    def __getstate__(self) -> tuple[Tensor, str, bool]:
        return (self.w, self.target, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[Tensor, str, bool]) -> None:
        self.w = state[0]
        self.target = state[1]
        self.training = state[2]
        torch.save(torch.zeros(1), self.target)


def no_jit_load(*args, **kwargs):
    raise AssertionError("torch.jit.load was called on a user file")


# ----------------------------------------------------------------------------- CLIP4Clip files
FP16_PARTS = ("attn.", "mlp.", "conv1.weight", "text_projection", "visual.proj")
SEQ_W, SEQ_BLOCKS, FRAMES = EMBED, 2, 12


def make_clip4clip_state(openai_sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """A DRL-style checkpoint: fp16 CLIP under clip./module., seqTransf blocks, WTI MLPs."""
    g = torch.Generator().manual_seed(3)
    sd: dict[str, Tensor] = {}
    for k, v in openai_sd.items():
        sd[f"clip.{k}"] = v.half() if any(p in k for p in FP16_PARTS) else v.clone()
    sd["frame_position_embeddings.weight"] = torch.randn(CONTEXT, SEQ_W, generator=g)
    shapes = {"attn.in_proj_weight": (3 * SEQ_W, SEQ_W), "attn.in_proj_bias": (3 * SEQ_W,),
              "attn.out_proj.weight": (SEQ_W, SEQ_W), "attn.out_proj.bias": (SEQ_W,),
              "ln_1.weight": (SEQ_W,), "ln_1.bias": (SEQ_W,), "ln_2.weight": (SEQ_W,),
              "ln_2.bias": (SEQ_W,), "mlp.c_fc.weight": (4 * SEQ_W, SEQ_W),
              "mlp.c_fc.bias": (4 * SEQ_W,), "mlp.c_proj.weight": (SEQ_W, 4 * SEQ_W),
              "mlp.c_proj.bias": (SEQ_W,)}
    for n in range(SEQ_BLOCKS):
        for name, shape in shapes.items():
            sd[f"transformerClip.resblocks.{n}.{name}"] = torch.randn(*shape, generator=g)
    for side in ("text", "video"):
        sd[f"{side}_weight_fc.0.weight"] = torch.randn(SEQ_W, SEQ_W, generator=g)
        sd[f"{side}_weight_fc.0.bias"] = torch.randn(SEQ_W, generator=g)
        sd[f"{side}_weight_fc.2.weight"] = torch.randn(1, SEQ_W, generator=g)
        sd[f"{side}_weight_fc.2.bias"] = torch.randn(1, generator=g)
    sd["lstm_visual.weight_ih_l0"] = torch.zeros(4, 4)  # a head this library does not have
    return {f"module.{k}": v for k, v in sd.items()}


# ----------------------------------------------------------------------------- build_encoder
class FakeTokenizer:
    bos_token_id, eos_token_id, pad_token_id = BOS, EOS, EOS

    def __len__(self) -> int:
        return VOCAB


def encoder_cfg(pretrained) -> ExperimentConfig:
    cfg = ExperimentConfig()
    cfg.model.pretrained = str(pretrained)
    cfg.data.image_size, cfg.data.max_words, cfg.data.num_frames = IMAGE, CONTEXT, FRAMES
    return cfg
