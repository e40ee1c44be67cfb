"""Diagnostics of DRGI's graphs and discriminator (why DRGI does or does not learn).

Pure tensor functions shared by the training report (``DRGI.forward``), the split-level probe
(:mod:`tvr.drgi_probe`) and the analysis export:

- :func:`attention_entropy`: normalised entropy of each attention row (1 = uniform).
- :func:`attention_logit_range`: ``log max α - log min α`` over a row's edges, i.e. the spread
  of the attention logits after the temperature (0 = uniform).
- :func:`mean_pairwise_cosine`: mean cosine between distinct nodes of one graph (1 = every node
  is the same vector, the collapse of methods.md §9.7).
- :func:`pairwise_accuracy`: does an anchor's positive graph outscore its negative graph?
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _row_mask(attn: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Valid (row, column) pairs and each valid row's number of valid columns N';
    ``[B, H, N, N]``, ``[B, H, N]`` (0 on padded rows)."""
    valid = mask.bool()
    pairs = valid[:, None, :, None] & valid[:, None, None, :]
    return pairs.expand(attn.shape), pairs.expand(attn.shape).sum(-1)


def attention_entropy(attn: Tensor, mask: Tensor) -> Tensor:
    """Mean normalised entropy ``H(α_i) / log N'`` of each graph's rows (N' = valid nodes >= 2).

    The normaliser is the graph's valid node count whatever the edges: a one-hot row scores 0,
    and a sparse (top-k) graph cannot exceed ``log(k + 1) / log N'``.

    Shapes:
        attn: ``[B, H, N, N]``, mask: ``[B, N]`` -> ``[B]`` (NaN for a graph without such a row)
    """
    edges, n = _row_mask(attn, mask)
    p = attn.float()
    positive = edges & (p > 0)
    ent = -(torch.where(positive, p * torch.where(positive, p, 1.0).log(), 0.0)).sum(-1)
    rows = n >= 2
    norm = torch.where(rows, ent / n.clamp_min(2).float().log(), 0.0)
    count = rows.sum((-1, -2))
    return torch.where(count > 0, norm.sum((-1, -2)) / count.clamp_min(1), float("nan"))


def attention_logit_range(attn: Tensor, mask: Tensor) -> Tensor:
    """Mean ``log max_j α_ij - log min_j α_ij`` over each graph's rows with ``>= 2`` valid
    columns (α clamped at 1e-12, so a column with no weight, e.g. outside a top-k graph, counts
    as a logit 27.6 below the largest).

    Shapes:
        attn: ``[B, H, N, N]``, mask: ``[B, N]`` -> ``[B]`` (NaN for a graph without such a row)
    """
    edges, n = _row_mask(attn, mask)
    logp = torch.where(edges, attn.float().clamp_min(1e-12).log(), float("nan"))
    spread = logp.nan_to_num(float("-inf")).amax(-1) - logp.nan_to_num(float("inf")).amin(-1)
    rows = n >= 2
    spread = torch.where(rows, spread, 0.0)
    count = rows.sum((-1, -2))
    return torch.where(count > 0, spread.sum((-1, -2)) / count.clamp_min(1), float("nan"))


def mean_pairwise_cosine(x: Tensor, mask: Tensor) -> Tensor:
    """Mean cosine between distinct valid nodes of each graph.

    Shapes:
        x: ``[B, N, F]``, mask: ``[B, N]`` -> ``[B]`` (NaN for a graph with fewer than 2 nodes)
    """
    valid = mask.bool()
    xn = F.normalize(x.float(), dim=-1)
    cos = xn @ xn.transpose(1, 2)  # [B, N, N]
    pair = valid[:, :, None] & valid[:, None, :]
    pair &= ~torch.eye(x.shape[1], dtype=torch.bool, device=x.device)[None]
    count = pair.sum((-1, -2))
    total = torch.where(pair, cos, 0.0).sum((-1, -2))
    return torch.where(count > 0, total / count.clamp_min(1), float("nan"))


def node_mean_sigmoid(logits: Tensor, mask: Tensor) -> Tensor:
    """Mean sigmoid score over a graph's valid nodes; ``[..., N] -> [...]`` (NaN without one)."""
    valid = mask.bool()
    total = torch.where(valid, torch.sigmoid(logits.float()), 0.0).sum(-1)
    count = valid.sum(-1)
    return torch.where(count > 0, total / count.clamp_min(1), float("nan"))


def pairwise_accuracy(pos: Tensor, neg: Tensor) -> Tensor:
    """1.0 where the positive graph's mean score beats the negative's (ties lose), NaN where
    either is undefined; ``[A]``."""
    defined = torch.isfinite(pos) & torch.isfinite(neg)
    return torch.where(defined, (pos > neg).float(), float("nan"))


def nanmean(x: Tensor) -> float:
    """Mean of the finite entries as a float; NaN when there is none."""
    x = x[torch.isfinite(x)]
    return float(x.mean()) if x.numel() else math.nan
