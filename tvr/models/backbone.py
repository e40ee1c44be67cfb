"""Backbones: CLIP towers -> :class:`TokenFeatures` (DESIGN.md seam 2, methods.md §1.1).

:class:`Encoder` is the contract every backbone meets; :class:`HFClipEncoder` (registry name
``hf_clip``) wraps Hugging Face ``transformers`` ``CLIPModel``:

* **text** ``ids [B, L]`` -> word tokens ``text_projection(ln_final(h))`` at every position
  ``[B, L, D]`` (SOT, EOT and padding included; the returned mask marks the valid ones) and the
  sentence vector read at the EOT position (the first ``eos_token_id`` of each row).
* **video** ``[B, T, 3, H, W]`` -> per-frame ``visual_projection(post_layernorm(CLS))``
  ``[B, T, D]`` and the masked mean over valid frames ``[B, D]``.

Where the weights come from (a from-scratch config, a run folder, an HF folder, an OpenAI
archive, a CLIP4Clip checkpoint) is resolved in one place, :mod:`tvr.models.loading`; this module
holds the forward passes and the config/save helpers (:meth:`HFClipEncoder.from_config`,
:meth:`~HFClipEncoder.export_config`, :meth:`~HFClipEncoder.save_pretrained`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tvr.config import ClipConfig, ExperimentConfig
from tvr.models.features import TokenFeatures
from tvr.registry import register

log = logging.getLogger(__name__)


class BackboneError(ValueError):
    """A backbone that cannot be built or fed: the message names the path, field or value."""


class BackboneNotFoundError(BackboneError, OSError):
    """``model.pretrained`` names nothing loadable (no such file, or a hub id while offline)."""


# --------------------------------------------------------------------------------------------
# Contract
# --------------------------------------------------------------------------------------------


class Encoder(nn.Module):
    """Contract of a text-video backbone.

    Attributes:
        embed_dim: width ``D`` of every token and pooled feature it returns.

    Shapes:
        encode_text: ids ``[B, L]`` (long), mask ``[B, L]`` -> TokenFeatures ``[B, L, D]``,
            pooled ``[B, D]``.
        encode_video: video ``[B, T, 3, H, W]`` (float), mask ``[B, T]`` -> TokenFeatures
            ``[B, T, D]``, pooled ``[B, D]``.
    """

    embed_dim: int

    def encode_text(self, ids: Tensor, mask: Tensor) -> TokenFeatures:  # pragma: no cover
        raise NotImplementedError

    def encode_video(self, video: Tensor, mask: Tensor) -> TokenFeatures:  # pragma: no cover
        raise NotImplementedError

    def text_layers_for_init(self) -> nn.ModuleList | None:
        """The text transformer's blocks, for initialising temporal modules; None if absent."""
        return None

    def vision_parameters(self) -> Iterator[nn.Parameter]:  # pragma: no cover
        """The vision tower's parameters (``model.freeze_vision`` freezes them)."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its vision tower")

    def vision_tail_parameters(self, layers: int) -> Iterator[nn.Parameter]:  # pragma: no cover
        """The last ``layers`` vision blocks and what follows them (``model.train_vision_layers``)."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its vision blocks")

    def export_config(self) -> dict[str, Any]:  # pragma: no cover
        """A JSON-able description from which :meth:`from_exported_config` rebuilds the module."""
        raise NotImplementedError

    @classmethod
    def from_exported_config(cls, data: dict[str, Any]) -> Encoder:  # pragma: no cover
        """Rebuild a randomly initialised encoder from :meth:`export_config`'s output."""
        raise NotImplementedError



# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it replaces ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def tiny_clip_config(
    vocab_size: int,
    *,
    embed_dim: int = 16,
    width: int = 32,
    layers: int = 2,
    heads: int = 4,
    patch_size: int = 8,
    max_positions: int = 32,
) -> ClipConfig:
    """A tiny :class:`ClipConfig` (both towers ``width`` wide) that builds in milliseconds.

    Pair it with ``image_size=32`` (4x4 patches of 8) in :meth:`HFClipEncoder.from_config`.
    """
    return ClipConfig(
        embed_dim=embed_dim,
        text_width=width,
        text_layers=layers,
        text_heads=heads,
        vision_width=width,
        vision_layers=layers,
        vision_heads=heads,
        patch_size=patch_size,
        vocab_size=vocab_size,
        max_positions=max_positions,
    )


VISION_STEMS = ("patch", "conv")


class ConvStem(nn.Module):
    """A small convolutional stem in place of ViT's patch embedding (Xiao et al., 2021).

    ``log2(patch_size)`` 3x3 stride-2 convolutions with GELU, widths doubling up to ``width``,
    then a 1x1 convolution to ``width``: the same output grid and width as
    ``Conv2d(k=patch_size, stride=patch_size)``, with far better sample efficiency on small
    data. :attr:`weight` (the last convolution's) gives the dtype ``transformers`` reads.

    Shapes:
        forward: ``[N, C, H, W]`` -> ``[N, width, H / patch_size, W / patch_size]``.
    """

    def __init__(self, in_channels: int, width: int, patch_size: int) -> None:
        super().__init__()
        n = patch_size.bit_length() - 1
        if patch_size < 2 or patch_size != 1 << n:
            raise BackboneError(
                f"vision_stem='conv' needs a power-of-two patch_size >= 2, got {patch_size}"
            )
        if width % (1 << (n - 1)):
            raise BackboneError(
                f"vision_stem='conv': vision width {width} must be divisible by {1 << (n - 1)}"
            )
        layers: list[nn.Module] = []
        c_in = in_channels
        for i in range(n):
            c_out = width >> (n - 1 - i)
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GELU()]
            c_in = c_out
        layers.append(nn.Conv2d(c_in, width, 1))
        self.layers = nn.Sequential(*layers)

    @property
    def weight(self) -> Tensor:
        return self.layers[-1].weight

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


# --------------------------------------------------------------------------------------------
# Hugging Face CLIP
# --------------------------------------------------------------------------------------------


@register("encoder", "hf_clip")
class HFClipEncoder(Encoder):
    """Hugging Face ``CLIPModel`` as a :class:`Encoder`.

    The text transformer runs with its causal mask only (the padding mask is not passed, as in
    CLIP4Clip): valid positions never see padding, so their features do not depend on it. The
    returned mask is the caller's text mask. Sentence vectors are read at the first
    ``eos_token_id`` of each row.

    Args:
        model: a ``transformers.CLIPModel`` (fp32 recommended; mixed precision via autocast).
        skip_padded_frames: run the vision tower only on frames whose mask is 1 and leave zeros
            at padded frames (faster). Off by default: padded frames are encoded like the
            references do, which matters for heads that ignore the video mask (X-CLIP).
        legacy_argmax_pooling: read sentence vectors at ``argmax(ids)`` instead of the first
            EOT id, as ``transformers`` does for old configs whose ``eos_token_id`` is 2.
            :func:`tvr.models.loading.load_encoder` sets it for such configs when no ``eos_id`` is given.
        vision_stem: ``"patch"`` keeps CLIP's patch embedding; ``"conv"`` replaces it by a
            freshly initialised :class:`ConvStem` (recorded by :meth:`export_config`, so run
            folders rebuild it; an HF folder cannot hold it).

    Shapes:
        encode_text: ids ``[B, L]``, mask ``[B, L]`` -> tokens ``[B, L, D]``, mask ``[B, L]``,
            pooled ``[B, D]`` (the EOT token's feature).
        encode_video: video ``[B, T, 3, H, W]``, mask ``[B, T]`` -> tokens ``[B, T, D]``,
            mask ``[B, T]``, pooled ``[B, D]`` (mean over valid frames).
    """

    def __init__(
        self,
        model: Any,
        *,
        skip_padded_frames: bool = False,
        legacy_argmax_pooling: bool = False,
        vision_stem: str = "patch",
    ) -> None:
        super().__init__()
        from transformers import CLIPModel

        if not isinstance(model, CLIPModel):
            raise BackboneError(f"HFClipEncoder wraps a transformers CLIPModel, got {type(model)}")
        if vision_stem not in VISION_STEMS:
            raise BackboneError(
                f"vision_stem={vision_stem!r}: expected one of {', '.join(VISION_STEMS)}"
            )
        if vision_stem == "conv":
            vc = model.config.vision_config
            model.vision_model.embeddings.patch_embedding = ConvStem(
                vc.num_channels, vc.hidden_size, vc.patch_size
            )
        self.vision_stem = vision_stem
        self.clip = model
        self.skip_padded_frames = bool(skip_padded_frames)
        self.legacy_argmax_pooling = bool(legacy_argmax_pooling)
        self.embed_dim = int(model.config.projection_dim)

    # ---------------------------------------------------------------- properties and settings
    @property
    def config(self) -> Any:
        """The wrapped model's ``transformers.CLIPConfig``."""
        return self.clip.config

    @property
    def eos_token_id(self) -> int:
        return int(self.config.text_config.eos_token_id)

    @property
    def text_width(self) -> int:
        return int(self.config.text_config.hidden_size)

    @property
    def image_size(self) -> int:
        return int(self.config.vision_config.image_size)

    @property
    def max_text_length(self) -> int:
        return int(self.config.text_config.max_position_embeddings)

    @property
    def vocab_size(self) -> int:
        return int(self.config.text_config.vocab_size)

    def set_special_tokens(self, *, bos_id: int, eos_id: int, pad_id: int) -> None:
        """Set the tokenizer's special ids on the text config (and the text model's EOT id)."""
        for name, value in (("bos_id", bos_id), ("eos_id", eos_id), ("pad_id", pad_id)):
            if not 0 <= value < self.vocab_size:
                raise BackboneError(
                    f"{name}={value} is outside the text vocabulary (size {self.vocab_size})"
                )
        tc = self.config.text_config
        tc.bos_token_id, tc.eos_token_id, tc.pad_token_id = bos_id, eos_id, pad_id
        self.clip.text_model.eos_token_id = eos_id
        self.legacy_argmax_pooling = False

    def set_eager_attention(self, enabled: bool = True) -> None:
        """Switch to eager attention (needed for attention maps) or back to SDPA."""
        self.clip.set_attn_implementation("eager" if enabled else "sdpa")

    def text_layers_for_init(self) -> nn.ModuleList:
        """The text tower's ``transformers`` ``CLIPEncoderLayer`` list (all of them, in order).

        Each layer holds ``self_attn.{q,k,v,out}_proj.{weight,bias}``, ``layer_norm1.*``,
        ``mlp.fc1.*``, ``mlp.fc2.*`` and ``layer_norm2.*`` (pre-LN, quick_gelu for OpenAI
        weights, LayerNorm eps 1e-5) at width :attr:`text_width`. The seqTransf head copies the
        first ``seqtransf.layers`` of them when :attr:`text_width` equals :attr:`embed_dim`.
        """
        return self.clip.text_model.encoder.layers

    def vision_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of ``vision_model`` (stem, transformer, norms) and ``visual_projection``."""
        yield from self.clip.vision_model.parameters()
        yield from self.clip.visual_projection.parameters()

    def vision_tail_parameters(self, layers: int) -> Iterator[nn.Parameter]:
        """The last ``layers`` vision blocks, ``post_layernorm`` and ``visual_projection``
        (``model.train_vision_layers``)."""
        blocks = self.clip.vision_model.encoder.layers
        if not 1 <= layers <= len(blocks):
            raise BackboneError(
                f"model.train_vision_layers={layers}: the vision tower has {len(blocks)} blocks"
            )
        for block in blocks[len(blocks) - layers:]:
            yield from block.parameters()
        yield from self.clip.vision_model.post_layernorm.parameters()
        yield from self.clip.visual_projection.parameters()

    def text_positions_for_init(self) -> Tensor:
        """The text position table ``[max_positions, text_width]`` (seqTransf's frame table init)."""
        return self.clip.text_model.embeddings.position_embedding.weight

    # ---------------------------------------------------------------- forward passes
    def encode_text(self, ids: Tensor, mask: Tensor) -> TokenFeatures:
        """Word tokens at every position and the EOT sentence vector; see the class docstring."""
        if ids.dim() != 2 or mask.shape != ids.shape:
            raise BackboneError(
                f"encode_text: expected ids [B, L] and mask of the same shape, got "
                f"{tuple(ids.shape)} and {tuple(mask.shape)}"
            )
        if ids.shape[1] > self.max_text_length:
            raise BackboneError(
                f"encode_text: {ids.shape[1]} tokens exceed the text model's "
                f"{self.max_text_length} positions (data.max_words too large?)"
            )
        out = self.clip.text_model(input_ids=ids)
        tokens = self.clip.text_projection(out.last_hidden_state)  # [B, L, D]; ln_final inside
        if self.legacy_argmax_pooling:  # legacy HF configs: EOT is the largest id
            eot = ids.argmax(dim=1)
        else:
            is_eot = ids == self.eos_token_id  # [B, L]
            has_eot = is_eot.any(dim=1)
            if not bool(has_eot.all()):
                rows = torch.nonzero(~has_eot).flatten().tolist()
                raise BackboneError(
                    f"encode_text: rows {rows[:10]} contain no EOT id {self.eos_token_id}; the "
                    "tokenizer's eos id must match the model's text_config.eos_token_id and "
                    "every row must end with it (check truncation)"
                )
            eot = is_eot.int().argmax(dim=1)  # first EOT per row, [B]
        pooled = tokens[torch.arange(tokens.shape[0], device=tokens.device), eot]  # [B, D]
        return TokenFeatures(tokens=tokens, mask=mask, pooled=pooled)

    def _frame_features(self, frames: Tensor) -> Tensor:
        """``[N, 3, H, W]`` -> ``[N, D]``: CLS -> post_layernorm -> visual_projection."""
        out = self.clip.vision_model(pixel_values=frames)
        return self.clip.visual_projection(out.pooler_output)  # pooler = post-LN CLS

    def encode_video(self, video: Tensor, mask: Tensor) -> TokenFeatures:
        """Per-frame CLS features and their masked mean; see the class docstring."""
        if video.dim() != 5 or video.shape[2] != 3 or mask.shape != video.shape[:2]:
            raise BackboneError(
                f"encode_video: expected video [B, T, 3, H, W] and mask [B, T], got "
                f"{tuple(video.shape)} and {tuple(mask.shape)}"
            )
        b, t, _, h, w = video.shape
        if (h, w) != (self.image_size, self.image_size):
            raise BackboneError(
                f"encode_video: frames are {h}x{w} but the vision tower expects "
                f"{self.image_size}x{self.image_size} (data.image_size)"
            )
        valid = mask.bool()  # [B, T]
        counts = valid.sum(dim=1)  # [B]
        if bool((counts == 0).any()):
            rows = torch.nonzero(counts == 0).flatten().tolist()
            raise BackboneError(f"encode_video: rows {rows[:10]} have no valid frame (mask all 0)")
        dtype = self.clip.vision_model.embeddings.patch_embedding.weight.dtype
        frames = video.reshape(b * t, 3, h, w).to(dtype)  # [B*T, 3, H, W]
        flat_valid = valid.reshape(-1)
        if self.skip_padded_frames and not bool(flat_valid.all()):
            feats = self._frame_features(frames[flat_valid])  # [N_valid, D]
            tokens = feats.new_zeros(b * t, feats.shape[-1])
            tokens[flat_valid] = feats
        else:
            tokens = self._frame_features(frames)  # [B*T, D]
        tokens = tokens.reshape(b, t, -1)  # [B, T, D]
        weights = valid.to(tokens.dtype).unsqueeze(-1)  # [B, T, 1]
        pooled = (tokens * weights).sum(dim=1) / counts.to(tokens.dtype).unsqueeze(-1)
        return TokenFeatures(tokens=tokens, mask=mask, pooled=pooled)

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_config(
        cls,
        clip_cfg: ClipConfig,
        *,
        vocab_size: int,
        bos_id: int,
        eos_id: int,
        pad_id: int,
        image_size: int,
        max_positions: int,
        eager_attention: bool = False,
        skip_padded_frames: bool = False,
        vision_stem: str = "patch",
    ) -> HFClipEncoder:
        """A randomly initialised CLIP of ``clip_cfg``'s size (MLPs 4x wide, quick_gelu).

        ``vocab_size``, the special ids, ``image_size`` and ``max_positions`` override
        ``clip_cfg``'s values (they come from the tokenizer and the data config);
        ``vision_stem`` as in the class.

        Raises:
            BackboneError: widths not divisible by heads, image size not divisible by the patch
            size, or special ids outside the vocabulary.
        """
        from transformers import CLIPConfig, CLIPModel

        checks = (
            ("model.clip.text_width", clip_cfg.text_width, clip_cfg.text_heads),
            ("model.clip.vision_width", clip_cfg.vision_width, clip_cfg.vision_heads),
            ("data.image_size", image_size, clip_cfg.patch_size),
        )
        for name, value, divisor in checks:
            if divisor <= 0 or value <= 0 or value % divisor:
                raise BackboneError(f"{name}={value} must be a positive multiple of {divisor}")
        for name, value in (("bos_id", bos_id), ("eos_id", eos_id), ("pad_id", pad_id)):
            if not 0 <= value < vocab_size:
                raise BackboneError(f"{name}={value} is outside the vocabulary (size {vocab_size})")
        config = CLIPConfig(
            text_config=dict(
                vocab_size=vocab_size,
                hidden_size=clip_cfg.text_width,
                intermediate_size=4 * clip_cfg.text_width,
                num_hidden_layers=clip_cfg.text_layers,
                num_attention_heads=clip_cfg.text_heads,
                max_position_embeddings=max_positions,
                hidden_act="quick_gelu",
                layer_norm_eps=1e-5,
                projection_dim=clip_cfg.embed_dim,
                bos_token_id=bos_id,
                eos_token_id=eos_id,
                pad_token_id=pad_id,
            ),
            vision_config=dict(
                hidden_size=clip_cfg.vision_width,
                intermediate_size=4 * clip_cfg.vision_width,
                num_hidden_layers=clip_cfg.vision_layers,
                num_attention_heads=clip_cfg.vision_heads,
                image_size=image_size,
                patch_size=clip_cfg.patch_size,
                hidden_act="quick_gelu",
                layer_norm_eps=1e-5,
                projection_dim=clip_cfg.embed_dim,
            ),
            projection_dim=clip_cfg.embed_dim,
        )
        config._attn_implementation = "eager" if eager_attention else "sdpa"
        return cls(CLIPModel(config), skip_padded_frames=skip_padded_frames,
                   vision_stem=vision_stem)

    def check_fits(self, cfg: ExperimentConfig, tokenizer_vocab: int | None = None) -> None:
        """Raise :class:`BackboneError` when the data config or tokenizer does not fit the model."""
        where = f"model.pretrained={cfg.model.pretrained!r}"
        if cfg.data.image_size != self.image_size:
            raise BackboneError(
                f"data.image_size={cfg.data.image_size} but {where} expects "
                f"{self.image_size}x{self.image_size} frames"
            )
        if cfg.data.max_words > self.max_text_length:
            raise BackboneError(
                f"data.max_words={cfg.data.max_words} exceeds the {self.max_text_length} text "
                f"positions of {where}"
            )
        if tokenizer_vocab is not None and tokenizer_vocab > self.vocab_size:
            raise BackboneError(
                f"the tokenizer has {tokenizer_vocab} ids but {where} embeds only "
                f"{self.vocab_size}"
            )

    # ---------------------------------------------------------------- persistence
    def export_config(self) -> dict[str, Any]:
        """``{"clip": CLIPConfig as a dict, "skip_padded_frames", "legacy_argmax_pooling",
        "vision_stem"}``."""
        clip = json.loads(self.config.to_json_string(use_diff=False))
        return {
            "clip": clip,
            "skip_padded_frames": self.skip_padded_frames,
            "legacy_argmax_pooling": self.legacy_argmax_pooling,
            "vision_stem": self.vision_stem,
        }

    @classmethod
    def from_exported_config(cls, data: dict[str, Any]) -> HFClipEncoder:
        """Rebuild (randomly initialised) from :meth:`export_config`'s output."""
        from transformers import CLIPConfig, CLIPModel

        if not isinstance(data, dict) or not isinstance(data.get("clip"), dict):
            raise BackboneError(
                f"hf_clip exported config: expected a mapping with a 'clip' mapping, got {data!r}"
            )
        config = CLIPConfig.from_dict(data["clip"])
        return cls(
            CLIPModel(config),
            skip_padded_frames=bool(data.get("skip_padded_frames")),
            legacy_argmax_pooling=bool(data.get("legacy_argmax_pooling")),
            vision_stem=data.get("vision_stem", "patch"),
        )

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the wrapped model as an HF CLIP folder (``config.json`` + ``model.safetensors``).

        The folder is written next to its destination and renamed into place, so a crash never
        leaves a half-written folder behind.

        Raises:
            BackboneError: the encoder uses ``vision_stem="conv"``, which HF folders cannot hold.
        """
        directory = Path(directory)
        if self.vision_stem != "patch":
            raise BackboneError(
                f"save_pretrained {directory}: an HF CLIP folder cannot hold "
                f"vision_stem={self.vision_stem!r}; save a run folder (tvr.checkpoint) instead"
            )
        with _atomic_dir(directory) as tmp:
            self.clip.save_pretrained(str(tmp))
        return directory
