"""Dense masked graph attention and Deep-Graph-Infomax parts (methods.md §8, §9.3).

Graphs are fully connected with self-loops and stored densely as node features ``[B, N, D]``
plus a node mask ``[B, N]`` (1 = real node). Padded nodes never receive attention, are excluded
from the readout and have output 0.

- :class:`DenseGAT`: multi-head GAT (heads averaged), no biases, LeakyReLU 0.2.
- :func:`masked_readout`: ``sigmoid`` of the masked node mean.
- :class:`BilinearDiscriminator`: ``h^T U s + b``.
- :class:`GraphInfomax`: encoder + readout + node discriminator of one modality.
- :func:`infomax_bce`: the per-anchor DGI binary cross-entropy with per-graph node means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _activation(name: str | None) -> nn.Module:
    if name is None or name == "none":
        return nn.Identity()
    if name == "elu":
        return nn.ELU()
    if name == "prelu":
        return nn.PReLU(num_parameters=1)
    raise ValueError(f"GAT activation {name!r}: expected 'elu', 'prelu' or 'none'")


class DenseGAT(nn.Module):
    """Graph attention over dense, fully connected, masked graphs.

    Per head ``k`` (no biases anywhere)::

        z_i   = W_k x_i
        e_ij  = LeakyReLU_0.2(a1_k · z_i + a2_k · z_j)
        α_ij  = softmax over valid j of e_ij
        h_i   = act(mean_k sum_j α_ij z_j),   h_i := 0 on padded i

    Args:
        in_dim: node input width.
        out_dim: node output width.
        heads: attention heads, averaged (not concatenated).
        activation: ``"elu"`` (default), ``"prelu"`` (one learnable slope) or ``"none"``.
        attn_dropout: dropout on the attention coefficients (training only).
        negative_slope: LeakyReLU slope of the attention logits.

    Parameters: ``heads * (in_dim * out_dim + 2 * out_dim)`` (+1 with PReLU).

    Shapes:
        x: ``[B, N, in_dim]``, mask: ``[B, N]`` (or None = all valid)
        -> h ``[B, N, out_dim]``; with ``return_attention`` also α ``[B, heads, N, N]``
        whose rows sum to 1 over valid j for valid i, and are 0 on padded rows and columns.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        heads: int = 1,
        activation: str | None = "elu",
        attn_dropout: float = 0.0,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if in_dim < 1 or out_dim < 1 or heads < 1:
            raise ValueError(
                f"DenseGAT: in_dim={in_dim}, out_dim={out_dim}, heads={heads} must all be >= 1"
            )
        if not 0.0 <= attn_dropout < 1.0:
            raise ValueError(f"DenseGAT: attn_dropout={attn_dropout} must be in [0, 1)")
        self.in_dim, self.out_dim, self.heads = in_dim, out_dim, heads
        self.negative_slope = negative_slope
        self.attn_dropout = attn_dropout
        self.proj = nn.Linear(in_dim, heads * out_dim, bias=False)
        self.att_self = nn.Parameter(torch.empty(heads, out_dim))  # a1: scores the receiver i
        self.att_neighbor = nn.Parameter(torch.empty(heads, out_dim))  # a2: scores the sender j
        self.act = _activation(activation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform ``W`` per head; ``a1``/``a2`` Xavier as a ``Linear(out_dim, 1)``."""
        w = self.proj.weight.data.view(self.heads, self.out_dim, self.in_dim)
        for k in range(self.heads):
            nn.init.xavier_uniform_(w[k])
        bound = math.sqrt(6.0 / (self.out_dim + 1))
        nn.init.uniform_(self.att_self, -bound, bound)
        nn.init.uniform_(self.att_neighbor, -bound, bound)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        if x.dim() != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(
                f"DenseGAT expects node features [B, N, {self.in_dim}], got {tuple(x.shape)}"
            )
        b, n, _ = x.shape
        valid = torch.ones(b, n, dtype=torch.bool, device=x.device) if mask is None else mask.bool()
        z = self.proj(x).view(b, n, self.heads, self.out_dim).transpose(1, 2)  # [B, H, N, F]
        e_self = (z * self.att_self[None, :, None, :]).sum(-1)  # [B, H, N]
        e_nbr = (z * self.att_neighbor[None, :, None, :]).sum(-1)  # [B, H, N]
        logits = F.leaky_relu(
            e_self[..., :, None] + e_nbr[..., None, :], self.negative_slope
        )  # [B, H, N, N]
        col = valid[:, None, None, :]  # [B, 1, 1, N]
        row = valid[:, None, :, None]  # [B, 1, N, 1]
        # finfo.min (not -inf): a graph with no valid node gives zeros instead of NaN.
        logits = logits.masked_fill(~col, torch.finfo(logits.dtype).min)
        attn = torch.softmax(logits, dim=-1)
        attn = torch.where(col & row, attn, 0.0)  # [B, H, N, N]
        dropped = F.dropout(attn, self.attn_dropout, self.training) if self.attn_dropout else attn
        h = (dropped @ z).mean(dim=1)  # [B, N, F]
        h = torch.where(valid[..., None], self.act(h), 0.0)
        if return_attention:
            return h, attn
        return h


def masked_readout(h: Tensor, mask: Tensor | None = None) -> Tensor:
    """DGI readout: ``sigmoid`` of the mean of the valid node embeddings.

    Shapes:
        h: ``[B, N, F]``, mask: ``[B, N]`` (or None = all valid) -> ``[B, F]``
    """
    if mask is None:
        return torch.sigmoid(h.mean(dim=1))
    valid = mask.bool()[..., None]  # [B, N, 1]
    total = torch.where(valid, h, 0.0).sum(dim=1)
    return torch.sigmoid(total / valid.sum(dim=1).clamp_min(1).to(h.dtype))


class BilinearDiscriminator(nn.Module):
    """DGI discriminator ``D(h, s) = h^T U s + b`` returning logits.

    Args:
        dim: width of node embeddings and summaries.

    Parameters: ``dim**2 + 1`` (U Xavier-uniform, b = 0).

    Shapes:
        h: ``[..., N, dim]``, s: ``[..., dim]`` (same leading dims) -> ``[..., N]``
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, dim))
        self.bias = nn.Parameter(torch.zeros(1))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, h: Tensor, s: Tensor) -> Tensor:
        us = s @ self.weight.T  # [..., dim]: U s
        return (h * us.unsqueeze(-2)).sum(-1) + self.bias


@dataclass
class GraphEncoding:
    """Encoded graphs of one modality.

    Shapes:
        nodes: ``[B, N, F]`` (0 on padded nodes), mask: ``[B, N]`` (bool),
        summary: ``[B, F]``, attention: ``[B, H, N, N]`` or None.
    """

    nodes: Tensor
    mask: Tensor
    summary: Tensor
    attention: Tensor | None = None


class GraphInfomax(nn.Module):
    """Deep-Graph-Infomax parts of one modality: encoder, readout and node discriminator.

    The summary that the discriminator scores nodes against is chosen by the caller: the
    graph's own summary (DGI, DRGI intra mode) or the other modality's (DRGI cross mode).
    Corruption is injected by the caller too: DRGI passes the nodes of hard-negative graphs.

    Args:
        encoder: a node encoder ``(x, mask, return_attention) -> h [, attention]``
            (e.g. :class:`DenseGAT`).
        discriminator: ``(h, s) -> logits`` (e.g. :class:`BilinearDiscriminator`).
        normalize_inputs: L2-normalise node features before the encoder.

    Shapes:
        encode: x ``[B, N, D]``, mask ``[B, N]`` -> :class:`GraphEncoding`
        discriminate: h ``[..., N, F]``, s ``[..., F]`` -> ``[..., N]``
    """

    def __init__(
        self, encoder: nn.Module, discriminator: nn.Module, normalize_inputs: bool = True
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.discriminator = discriminator
        self.normalize_inputs = normalize_inputs

    def encode(self, x: Tensor, mask: Tensor, return_attention: bool = False) -> GraphEncoding:
        valid = mask.bool()
        if self.normalize_inputs:
            x = F.normalize(x, dim=-1)
        x = torch.where(valid[..., None], x, 0.0)  # padded garbage never reaches the encoder
        out = self.encoder(x, valid, return_attention=return_attention)
        nodes, attention = out if return_attention else (out, None)
        return GraphEncoding(nodes, valid, masked_readout(nodes, valid), attention)

    def discriminate(self, h: Tensor, s: Tensor) -> Tensor:
        return self.discriminator(h, s)


def infomax_bce(
    pos_logits: Tensor, pos_mask: Tensor, neg_logits: Tensor, neg_mask: Tensor
) -> Tensor:
    """Per-anchor DGI loss ``½ [mean_pos BCE(x, 1) + mean_neg BCE(x, 0)]`` over valid nodes.

    Each mean runs over that side's own valid nodes (all negative graphs of an anchor pooled),
    so positives and negatives weigh the same whatever the graph sizes.

    Shapes:
        pos_logits, pos_mask: ``[A, N]``; neg_logits, neg_mask: ``[A, M]`` -> ``[A]``
        (an anchor with no valid positive or negative node contributes 0 on that side).
    """
    pos = torch.where(pos_mask.bool(), F.softplus(-pos_logits), 0.0).sum(-1)
    neg = torch.where(neg_mask.bool(), F.softplus(neg_logits), 0.0).sum(-1)
    pos = pos / pos_mask.sum(-1).clamp_min(1).to(pos.dtype)
    neg = neg / neg_mask.sum(-1).clamp_min(1).to(neg.dtype)
    return 0.5 * (pos + neg)
