"""Dense masked graph attention and Deep-Graph-Infomax parts (methods.md §8, §9.3).

Graphs are fully connected with self-loops and stored densely as node features ``[B, N, D]``
plus a node mask ``[B, N]`` (1 = real node). Padded nodes never receive attention, are excluded
from the readout and have output 0.

- :class:`DenseGAT`: multi-head GAT (heads averaged), no biases, LeakyReLU 0.2.
- :func:`masked_readout`: ``sigmoid`` of the masked node mean; :class:`AttentionReadout`.
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
        attention: ``"gat"`` (above) or ``"gatv2"``: ``e_ij = a · LeakyReLU(z_i + z_j)``
            (Brody et al.; W shared, one vector a per head), so the ranking over j depends on i.
        root: ``"none"``; ``"free"``: ``h_i = act(z_i + Σ_j α_ij z_j)`` (no parameters);
            ``"weight"``: ``h_i = act(W_r x_i + Σ_j α_ij z_j)`` with its own ``W_r``.
            Either keeps node identity when attention is flat (methods.md §9.9).
        temperature: logits are divided by τ before the softmax (τ < 1 sharpens).
        learn_temperature: learn ``log τ`` (one parameter) instead of fixing it.
        topk: 0 = complete graph; k > 0: node i attends to its k most cosine-similar valid
            nodes (on the inputs x) plus itself.

    Parameters: ``heads * (in_dim * out_dim + 2 * out_dim)`` (+1 with PReLU, +1 with a learned
    temperature); GATv2 ``heads * (in_dim * out_dim + out_dim)``; ``root="weight"`` adds
    ``heads * in_dim * out_dim``.

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
        *,
        attention: str = "gat",
        root: str = "none",
        temperature: float = 1.0,
        learn_temperature: bool = False,
        topk: int = 0,
    ) -> None:
        super().__init__()
        if attention not in ("gat", "gatv2"):
            raise ValueError(f"DenseGAT: attention={attention!r}, expected 'gat' or 'gatv2'")
        if root not in ("none", "free", "weight"):
            raise ValueError(f"DenseGAT: root={root!r}, expected 'none', 'free' or 'weight'")
        if not temperature > 0:
            raise ValueError(f"DenseGAT: temperature={temperature} must be > 0")
        if topk < 0:
            raise ValueError(f"DenseGAT: topk={topk} must be >= 0 (0 = complete graph)")
        if in_dim < 1 or out_dim < 1 or heads < 1:
            raise ValueError(
                f"DenseGAT: in_dim={in_dim}, out_dim={out_dim}, heads={heads} must all be >= 1"
            )
        if not 0.0 <= attn_dropout < 1.0:
            raise ValueError(f"DenseGAT: attn_dropout={attn_dropout} must be in [0, 1)")
        self.in_dim, self.out_dim, self.heads = in_dim, out_dim, heads
        self.negative_slope = negative_slope
        self.attn_dropout = attn_dropout
        self.attention, self.root, self.topk = attention, root, topk
        self.proj = nn.Linear(in_dim, heads * out_dim, bias=False)
        if attention == "gat":
            self.att_self = nn.Parameter(torch.empty(heads, out_dim))  # a1: scores the receiver i
            self.att_neighbor = nn.Parameter(torch.empty(heads, out_dim))  # a2: scores the sender j
        else:  # GATv2 (shared W): e_ij = a . LeakyReLU(z_i + z_j)
            self.att = nn.Parameter(torch.empty(heads, out_dim))
        self.root_proj = (
            nn.Linear(in_dim, heads * out_dim, bias=False) if root == "weight" else None
        )
        log_tau = torch.tensor(math.log(temperature))
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_tau)
        else:
            self.register_buffer("log_temperature", log_tau, persistent=False)
        self.act = _activation(activation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform ``W`` per head; ``a1``/``a2`` Xavier as a ``Linear(out_dim, 1)``."""
        for lin in (self.proj, self.root_proj):
            if lin is None:
                continue
            w = lin.weight.data.view(self.heads, self.out_dim, self.in_dim)
            for k in range(self.heads):
                nn.init.xavier_uniform_(w[k])
        bound = math.sqrt(6.0 / (self.out_dim + 1))
        for vec in (
            (self.att_self, self.att_neighbor) if self.attention == "gat" else (self.att,)
        ):
            nn.init.uniform_(vec, -bound, bound)

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
        logits = self.attention_logits(z) / self.log_temperature.exp()  # [B, H, N, N]
        col = valid[:, None, None, :]  # [B, 1, 1, N]
        row = valid[:, None, :, None]  # [B, 1, N, 1]
        edges = col if not self.topk else col & self.neighbourhood(x, valid)[:, None]
        # finfo.min (not -inf): a graph with no valid node gives zeros instead of NaN.
        logits = logits.masked_fill(~edges, torch.finfo(logits.dtype).min)
        attn = torch.softmax(logits, dim=-1)
        attn = torch.where(edges & row, attn, 0.0)  # [B, H, N, N]
        dropped = F.dropout(attn, self.attn_dropout, self.training) if self.attn_dropout else attn
        h = dropped @ z  # [B, H, N, F]
        if self.root == "free":
            h = h + z
        elif self.root == "weight":
            h = h + self.root_proj(x).view(b, n, self.heads, self.out_dim).transpose(1, 2)
        h = h.mean(dim=1)  # [B, N, F]
        h = torch.where(valid[..., None], self.act(h), 0.0)
        if return_attention:
            return h, attn
        return h

    def attention_logits(self, z: Tensor) -> Tensor:
        """Unmasked attention logits ``e_ij`` before the temperature.

        Shapes:
            z: ``[B, H, N, F]`` -> ``[B, H, N, N]``
        """
        if self.attention == "gat":
            e_self = (z * self.att_self[None, :, None, :]).sum(-1)  # [B, H, N]
            e_nbr = (z * self.att_neighbor[None, :, None, :]).sum(-1)  # [B, H, N]
            return F.leaky_relu(e_self[..., :, None] + e_nbr[..., None, :], self.negative_slope)
        pair = F.leaky_relu(z[..., :, None, :] + z[..., None, :, :], self.negative_slope)
        return (pair * self.att[None, :, None, None, :]).sum(-1)  # [B, H, N, N]

    def neighbourhood(self, x: Tensor, valid: Tensor) -> Tensor:
        """Sparse graph: each node's ``topk`` most similar valid nodes (cosine) plus itself.

        Shapes:
            x: ``[B, N, D]``, valid: ``[B, N]`` -> bool ``[B, N, N]`` (row i: i's neighbours)
        """
        n = x.shape[1]
        xn = F.normalize(x, dim=-1)
        eye = torch.eye(n, dtype=torch.bool, device=x.device)[None]
        # a node is its own most similar node: leave it out so k others are chosen
        cos = (xn @ xn.transpose(1, 2)).masked_fill(~valid[:, None, :] | eye, float("-inf"))
        k = min(self.topk, n)
        idx = cos.topk(k, dim=-1).indices  # [B, N, k]
        keep = torch.zeros_like(cos, dtype=torch.bool).scatter_(-1, idx, True)
        return (keep | eye) & valid[:, None, :]


class AttentionReadout(nn.Module):
    """Summary by attention pooling: ``s = sigmoid(Σ_i softmax_i(q · h_i) h_i)`` over valid i.

    A plain mean blurs the one node that tells a one-edit sibling apart; a learned query ``q``
    can weight it up. Parameters: ``dim``.

    Shapes:
        h: ``[B, N, F]``, mask: ``[B, N]`` -> ``[B, F]``
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.zeros(dim))  # starts as the mean readout

    def forward(self, h: Tensor, mask: Tensor | None = None) -> Tensor:
        logits = h @ self.query  # [B, N]
        if mask is not None:
            logits = logits.masked_fill(~mask.bool(), torch.finfo(logits.dtype).min)
        w = torch.softmax(logits, dim=-1)
        if mask is not None:
            w = torch.where(mask.bool(), w, 0.0)
        return torch.sigmoid((w[..., None] * h).sum(dim=1))


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

    def token_scores(self, h: Tensor, others: Tensor, other_mask: Tensor) -> Tensor:
        """Token-level score: each node against every valid node of the other side, max over them.

        ``score_n = max_{m valid} h_n^T U o_m + b`` (WTI-style, no extra parameters); a row
        without any valid other node scores ``b``.

        Shapes:
            h: ``[..., N, dim]``, others: ``[..., M, dim]``, other_mask: ``[..., M]`` (leading
            dims broadcast) -> ``[..., N]``
        """
        uo = others @ self.weight.T  # [..., M, dim]: U o_m
        pair = h @ uo.transpose(-1, -2)  # [..., N, M]
        pair = pair.masked_fill(~other_mask.bool().unsqueeze(-2), float("-inf"))
        best = pair.amax(dim=-1)
        return torch.where(torch.isfinite(best), best, 0.0) + self.bias


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
        self,
        encoder: nn.Module,
        discriminator: nn.Module,
        normalize_inputs: bool = True,
        readout: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.discriminator = discriminator
        self.normalize_inputs = normalize_inputs
        self.readout = readout  # None: the sigmoid of the masked node mean

    def encode(self, x: Tensor, mask: Tensor, return_attention: bool = False) -> GraphEncoding:
        valid = mask.bool()
        if self.normalize_inputs:
            x = F.normalize(x, dim=-1)
        x = torch.where(valid[..., None], x, 0.0)  # padded garbage never reaches the encoder
        out = self.encoder(x, valid, return_attention=return_attention)
        nodes, attention = out if return_attention else (out, None)
        summary = masked_readout(nodes, valid) if self.readout is None else self.readout(nodes, valid)
        return GraphEncoding(nodes, valid, summary, attention)

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
