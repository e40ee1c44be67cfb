"""The seqTransf temporal module of CLIP4Clip (methods.md §1.2), shared by several heads.

``F' = Blocks(F + P[0:T]) + F``: pre-LN residual attention blocks (QuickGELU MLP of width 4D,
LayerNorm eps 1e-12, bidirectional attention with padded frames masked) over frame features,
plus a residual around the whole stack.

Parameter names are fixed so checkpoint importers can map onto them::

    frame_position.weight                              [P, D]
    blocks.N.attn.{q_proj,k_proj,v_proj,out_proj}.{weight,bias}
    blocks.N.ln_1.{weight,bias}   blocks.N.ln_2.{weight,bias}
    blocks.N.mlp.fc1.{weight,bias}   blocks.N.mlp.fc2.{weight,bias}
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tvr.config import ExperimentConfig

log = logging.getLogger(__name__)

LN_EPS = 1e-12  # CLIP4Clip's temporal LayerNorms (CLIP itself uses 1e-5)
MASK_VALUE = -1e6  # additive attention mask on padded frames, as in CLIP4Clip


class QuickGELU(nn.Module):
    """CLIP's GELU approximation ``x * sigmoid(1.702 x)``."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate q/k/v/out projections and a key padding mask.

    Args:
        width: model width D.
        heads: attention heads; must divide ``width``.

    Shapes:
        x: ``[B, T, D]``, key_mask: ``[B, T]`` (1 = valid key) -> ``[B, T, D]``
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if heads < 1 or width % heads != 0:
            raise ValueError(
                f"seqtransf.heads={heads} must be a positive divisor of the feature width D={width}"
            )
        self.heads = heads
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        b, t, d = x.shape
        # [B, T, D] -> [B, H, T, D/H]
        q, k, v = (
            proj(x).view(b, t, self.heads, d // self.heads).transpose(1, 2)
            for proj in (self.q_proj, self.k_proj, self.v_proj)
        )
        bias = None
        if key_mask is not None:  # additive, in the query dtype (autocast may differ from x)
            fill = max(MASK_VALUE, torch.finfo(q.dtype).min)
            bias = torch.zeros(b, 1, 1, t, dtype=q.dtype, device=x.device)
            bias = bias.masked_fill(~key_mask.bool()[:, None, None, :], fill)  # [B, 1, 1, T]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # [B, H, T, D/H]
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    """``fc2(QuickGELU(fc1(x)))`` with hidden width 4D.

    Shapes:
        x: ``[..., D]`` -> ``[..., D]``
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, 4 * width)
        self.act = QuickGELU()
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ResidualAttentionBlock(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``.

    Shapes:
        x: ``[B, T, D]``, key_mask: ``[B, T]`` -> ``[B, T, D]``
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = SelfAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width, eps=LN_EPS)
        self.mlp = MLP(width)
        self.ln_2 = nn.LayerNorm(width, eps=LN_EPS)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.ln_1(x), key_mask)
        return x + self.mlp(self.ln_2(x))


class TemporalTransformer(nn.Module):
    """seqTransf: ``F' = Blocks(F + P[0:T]) + F`` over frame features.

    Args:
        width: feature width D.
        layers: number of residual attention blocks (CLIP4Clip: 4).
        heads: attention heads per block; must divide ``width``.
        max_frames: rows of the frame position table (CLIP4Clip: 77).

    Shapes:
        frames: ``[B, T, D]`` with T <= max_frames, mask: ``[B, T]`` (1 = real frame)
        -> ``[B, T, D]``. Outputs at padded frames are defined but meaningless; real frames
        never attend to padded ones.
    """

    def __init__(self, width: int, layers: int = 4, heads: int = 8, max_frames: int = 77) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"seqtransf.layers={layers}: expected at least 1 block")
        if max_frames < 1:
            raise ValueError(f"seqtransf.max_frames={max_frames}: expected at least 1 row")
        if heads < 1 or width % heads != 0:
            raise ValueError(
                f"seqtransf.heads={heads} must be a positive divisor of the feature width D={width}"
            )
        self.width = width
        self.max_frames = max_frames
        self.frame_position = nn.Embedding(max_frames, width)
        self.blocks = nn.ModuleList(ResidualAttentionBlock(width, heads) for _ in range(layers))
        self.reset_parameters()

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, width: int) -> TemporalTransformer:
        """Build from the ``seqtransf`` config section."""
        st = cfg.seqtransf
        return cls(width, layers=st.layers, heads=st.heads, max_frames=st.max_frames)

    def reset_parameters(self) -> None:
        """CLIP4Clip-style init: weights N(0, 0.02), biases 0, LayerNorms identity."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, frames: Tensor, mask: Tensor) -> Tensor:
        t = frames.shape[1]
        if t > self.max_frames:
            raise ValueError(
                f"seqTransf got {t} frames but its position table has seqtransf.max_frames="
                f"{self.max_frames} rows"
            )
        positions = self.frame_position.weight[:t].to(frames.dtype)  # [T, D]
        x = frames + positions[None]
        for block in self.blocks:
            x = block(x, mask)
        return x + frames

    @torch.no_grad()
    def init_from_text_layers(
        self, layers: Sequence[nn.Module], position_embedding: Tensor | nn.Embedding
    ) -> int:
        """Copy CLIP text-encoder layers ``0..len(blocks)-1`` and positions into this module.

        Args:
            layers: Hugging Face ``CLIPEncoderLayer`` modules (``text_model.encoder.layers``),
                with ``self_attn.{q,k,v,out}_proj``, ``layer_norm1/2`` and ``mlp.fc1/fc2``.
            position_embedding: the text position table ``[P_text, W]`` (tensor or embedding).

        Returns:
            Number of blocks copied: 0 when the text width differs from this module's width
            (nothing is copied), otherwise ``min(len(layers), len(blocks))``. LayerNorm eps
            stays 1e-12 (CLIP4Clip behaviour).
        """
        table = (
            position_embedding.weight
            if isinstance(position_embedding, nn.Embedding)
            else position_embedding
        )
        if table.dim() != 2 or table.shape[1] != self.width or not layers:
            log.warning(
                "seqTransf not initialised from the text tower: text width %s or %d layers do "
                "not match the temporal width %d",
                tuple(table.shape),
                len(layers),
                self.width,
            )
            return 0
        n = min(len(layers), len(self.blocks))
        for i in range(n):
            src, dst = layers[i], self.blocks[i]
            if tuple(src.mlp.fc1.weight.shape) != tuple(dst.mlp.fc1.weight.shape):
                log.warning(
                    "seqTransf block %d not initialised from text layer %d: MLP width %s != %s",
                    i,
                    i,
                    tuple(src.mlp.fc1.weight.shape),
                    tuple(dst.mlp.fc1.weight.shape),
                )
                return i
            heads = getattr(src.self_attn, "num_heads", dst.attn.heads)
            if heads != dst.attn.heads:
                log.warning(
                    "text layer %d has %d attention heads, seqTransf has %d: weights copied, "
                    "head split differs",
                    i,
                    heads,
                    dst.attn.heads,
                )
            for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
                _copy_linear(getattr(src.self_attn, name), getattr(dst.attn, name))
            _copy_linear(src.layer_norm1, dst.ln_1)
            _copy_linear(src.layer_norm2, dst.ln_2)
            _copy_linear(src.mlp.fc1, dst.mlp.fc1)
            _copy_linear(src.mlp.fc2, dst.mlp.fc2)
        rows = min(self.max_frames, table.shape[0])
        self.frame_position.weight[:rows].copy_(table[:rows])
        if n < len(self.blocks):
            log.warning(
                "text tower has %d layers; seqTransf blocks %d..%d keep their random init",
                len(layers),
                n,
                len(self.blocks) - 1,
            )
        if rows < self.max_frames:
            log.warning(
                "text position table has %d rows; frame positions %d..%d keep their random init",
                table.shape[0],
                rows,
                self.max_frames - 1,
            )
        log.info("seqTransf initialised from %d text layers", n)
        return n


def _copy_linear(src: nn.Module, dst: nn.Module) -> None:
    """Copy ``weight`` and ``bias`` of a Linear or LayerNorm with identical shapes."""
    dst.weight.copy_(src.weight)
    dst.bias.copy_(src.bias)
