"""Display-ready views of GAT attention: one head or the head mean, edges, attention received.

The bundle stores DRGI's GAT attention as ``[H, N, N]`` per caption or video graph with a node
mask ``[N]`` (``analysis.bundle.DRGIArrays``). The app's attention page draws the valid block
of one head (or the mean over heads) as a heatmap and as a network; these functions prepare
those arrays so the page does no arithmetic. Every view is row-stochastic over the valid nodes
(the same renormalisation as :mod:`analysis.attention`), so the statistics there apply to it
with an all-True mask.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def _check_stack(attn: Any, mask: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(attn, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1] != a.shape[2]:
        raise ValueError(
            f"attn: expected [H, N, N] (or one [N, N] map) attention, got shape {np.shape(attn)}"
        )
    m = np.asarray(mask)
    if m.shape != (a.shape[1],):
        raise ValueError(f"mask: expected shape ({a.shape[1]},) (one entry per node), got {m.shape}")
    valid = m.astype(bool)
    if not valid.any():
        raise ValueError("mask has no valid node")
    return a, valid


def attention_view(
    attn: Any, mask: Any, head: int | None = None, *, minus_uniform: bool = False
) -> np.ndarray:
    """The valid block of one head's attention, or the mean over heads, rows renormalised.

    Args:
        attn: ``[H, N, N]`` (or ``[N, N]``) attention probabilities of one graph.
        mask: ``[N]`` node mask.
        head: which head (``0 <= head < H``); None averages the heads.
        minus_uniform: subtract the uniform baseline ``1 / N'``
            (:func:`analysis.attention.uniform_baseline`), so positive cells are attended more
            than uniform attention would.

    Returns:
        ``[N', N']`` float64 (``N' = mask.sum()``), each row summing to 1 over the valid
        nodes (0 with ``minus_uniform``); row ``i`` is how valid node ``i`` spreads its
        attention.

    Shapes:
        attn ``[H, N, N]``, mask ``[N]`` -> ``[N', N']``.
    """
    a, valid = _check_stack(attn, mask)
    if head is not None:
        if not 0 <= int(head) < a.shape[0]:
            raise ValueError(f"head={head!r}: expected 0 <= head < {a.shape[0]} (the head count)")
        a = a[int(head) : int(head) + 1]
    block = a[:, valid][:, :, valid]  # [h, N', N']
    if not np.isfinite(block).all() or (block < 0).any():
        raise ValueError("attn: expected finite non-negative attention probabilities")
    total = block.sum(axis=2, keepdims=True)
    if (total <= 0).any():
        raise ValueError("attn: a valid node has no attention mass on valid nodes")
    view = (block / total).mean(axis=0)
    return view - 1.0 / view.shape[0] if minus_uniform else view


def received_attention(attn: Any, mask: Any, head: int | None = None) -> np.ndarray:
    """Attention each node receives: the column means of :func:`attention_view`.

    Sums to 1 over the valid nodes; uniform attention gives ``1 / N'`` everywhere. For a
    video graph in token mode the nodes are frames, so this is a distribution over frames
    comparable with the text-to-frame weights.

    Shapes:
        attn ``[H, N, N]``, mask ``[N]`` -> ``[N]`` float64, 0 on padded nodes.
    """
    _, valid = _check_stack(attn, mask)
    view = attention_view(attn, mask, head)
    out = np.zeros(valid.shape[0], dtype=np.float64)
    out[valid] = view.mean(axis=0)
    return out


def received_attention_stack(attn: Any, mask: Any) -> np.ndarray:
    """:func:`received_attention` (mean over heads) of every graph of a stack.

    Shapes:
        attn ``[B, H, N, N]``, mask ``[B, N]`` -> ``[B, N]`` float64, 0 on padded nodes.
    """
    a = np.asarray(attn)
    m = np.asarray(mask)
    if a.ndim != 4 or m.ndim != 2 or a.shape[0] != m.shape[0]:
        raise ValueError(
            f"attn {a.shape} and mask {m.shape}: expected [B, H, N, N] and [B, N]"
        )
    out = np.zeros(m.shape, dtype=np.float64)
    for b in range(a.shape[0]):
        if m[b].any():
            out[b] = received_attention(a[b], m[b])
    return out


@dataclass(frozen=True)
class Edges:
    """Directed edges of an attention view, strongest first.

    Attributes:
        source: ``[E]`` int64 row (the attending node), positions in the view.
        target: ``[E]`` int64 column (the attended node).
        weight: ``[E]`` float64 attention of ``source`` on ``target``.
    """

    source: np.ndarray
    target: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return int(self.weight.shape[0])


def attention_edges(
    view: Any, *, min_weight: float = 0.0, self_loops: bool = False, top: int | None = None
) -> Edges:
    """The edges of a view with weight ``>= min_weight``, strongest first.

    Args:
        view: ``[N', N']`` from :func:`attention_view`.
        min_weight: keep edges at least this heavy (``1 / N'`` keeps those above uniform).
        self_loops: keep the diagonal.
        top: keep at most this many (after sorting).

    Shapes:
        view ``[N', N']`` -> :class:`Edges` with ``E`` entries; ties keep row-major order.
    """
    v = np.asarray(view, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] != v.shape[1]:
        raise ValueError(f"view: expected a square [N, N] map, got shape {v.shape}")
    if top is not None and int(top) < 0:
        raise ValueError(f"top={top!r}: expected a non-negative integer or None")
    keep = v >= float(min_weight)
    if not self_loops:
        np.fill_diagonal(keep, False)
    src, dst = np.nonzero(keep)  # row-major
    w = v[src, dst]
    order = np.argsort(-w, kind="stable")
    if top is not None:
        order = order[: int(top)]
    return Edges(src[order].astype(np.int64), dst[order].astype(np.int64), w[order])


def circle_layout(n: int, *, start_angle: float = 90.0) -> np.ndarray:
    """``n`` points evenly spaced on the unit circle, clockwise from ``start_angle`` degrees.

    Shapes:
        -> ``[n, 2]`` float64 (x, y).
    """
    if int(n) < 0:
        raise ValueError(f"n={n!r}: expected a non-negative integer")
    angles = np.deg2rad(float(start_angle)) - 2.0 * np.pi * np.arange(int(n)) / max(int(n), 1)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)
