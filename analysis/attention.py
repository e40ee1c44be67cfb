"""Statistics over attention maps: GAT node attention and text-to-frame attention.

An attention map here is one ``[N, N]`` matrix (one item, one head) with a node mask ``[N]``:
row ``i`` is node ``i``'s distribution over the nodes it attends to. Only valid rows and
columns are read; each valid row is renormalised over the valid columns before any statistic,
so a map that leaks a little mass onto padding is still measured on its valid part. Padded
rows come back as NaN (use ``np.nanmean`` to average).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np

from analysis.labels import frame_label

logger = logging.getLogger(__name__)

_SPECIAL_TOKENS = {"<|startoftext|>": "[SOT]", "<|endoftext|>": "[EOT]"}


def _check_mask(mask: Any, n: int | None = None, name: str = "mask") -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D node mask, got shape {m.shape}")
    if n is not None and m.shape[0] != n:
        raise ValueError(f"{name}: expected {n} entries (one per node), got {m.shape[0]}")
    return m.astype(bool)


def _valid_rows(attn: Any, mask: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(P [N', N'] row-stochastic over valid nodes, valid [N] bool)``."""
    a = np.asarray(attn, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"attn: expected a square [N, N] attention map, got shape {a.shape}")
    valid = _check_mask(mask, a.shape[0])
    if not valid.any():
        raise ValueError("mask has no valid node")
    p = a[np.ix_(valid, valid)]
    if not np.isfinite(p).all():
        raise ValueError("attn: the valid block contains non-finite values")
    if (p < 0).any():
        raise ValueError(
            f"attn: negative weight {p.min():.4g}; expected attention probabilities (softmax "
            "output), not raw scores"
        )
    total = p.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0
    if empty.any():
        node = int(np.flatnonzero(valid)[np.flatnonzero(empty)[0]])
        raise ValueError(f"attn: row of valid node {node} has no mass on valid nodes")
    return p / total, valid


def normalised_entropy(attn: Any, mask: Any) -> np.ndarray:
    """Entropy of each valid row divided by ``log(number of valid nodes)``.

    1 means the node spreads its attention uniformly over all valid nodes, 0 that it attends
    to a single node. With a single valid node the value is undefined (NaN).

    Shapes:
        attn ``[N, N]``, mask ``[N]`` -> ``[N]`` float64 (NaN on padded rows).
    """
    p, valid = _valid_rows(attn, mask)
    n_valid = p.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(p), 0.0)
    entropy = -plogp.sum(axis=1)
    out = np.full(valid.shape[0], np.nan)
    if n_valid > 1:
        out[valid] = np.clip(entropy / np.log(n_valid), 0.0, 1.0)
    return out


def self_loop_share(attn: Any, mask: Any) -> np.ndarray:
    """Share of each valid node's attention that stays on itself (the diagonal).

    The uniform baseline is ``1 / number of valid nodes``.

    Shapes:
        attn ``[N, N]``, mask ``[N]`` -> ``[N]`` float64 (NaN on padded rows).
    """
    p, valid = _valid_rows(attn, mask)
    out = np.full(valid.shape[0], np.nan)
    out[valid] = np.diag(p)
    return out


def uniform_baseline(mask: Any) -> np.ndarray:
    """The attention map a node would have if it attended uniformly to all valid nodes.

    Shapes:
        mask ``[N]`` -> ``[N, N]`` float32: ``1 / N'`` on valid rows x valid columns, 0 elsewhere.
    """
    valid = _check_mask(mask)
    n_valid = int(valid.sum())
    out = np.zeros((valid.shape[0], valid.shape[0]), dtype=np.float32)
    if n_valid:
        out[np.ix_(valid, valid)] = 1.0 / n_valid
    return out


def event_alignment(
    weights_over_frames: Any,
    frame_event_ids: Any,
    mentioned_event_ids: Iterable[int],
) -> float:
    """Share of a caption's attention mass that falls on frames of the events it mentions.

    The SynthVTT attention-event alignment (``spec/synthvtt.md``, "What the analysis gains").
    The chance level, what uniform attention would score, is
    ``event_alignment(np.ones(T), frame_event_ids, mentioned)``.

    Args:
        weights_over_frames: ``[T]`` non-negative attention mass per frame (e.g. a row of
            text-to-frame attention, or a caption's word attention summed over words);
            it need not sum to 1, the share is taken of its total.
        frame_event_ids: ``[T]`` int event index of each frame, ``-1`` for frames that belong
            to no event (gaps, padding).
        mentioned_event_ids: the event indices the caption mentions.

    Returns:
        A float in ``[0, 1]``.
    """
    w = np.asarray(weights_over_frames, dtype=np.float64)
    ev = np.asarray(frame_event_ids)
    if w.ndim != 1:
        raise ValueError(f"weights_over_frames: expected [T], got shape {w.shape}")
    if ev.shape != w.shape:
        raise ValueError(
            f"frame_event_ids: expected shape {w.shape} (one event id per frame), got {ev.shape}"
        )
    if not np.issubdtype(ev.dtype, np.integer):
        raise ValueError(f"frame_event_ids: expected integer event ids, got dtype {ev.dtype}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(
            "weights_over_frames: expected finite non-negative attention mass (apply a softmax "
            "to raw similarities first)"
        )
    total = w.sum()
    if total <= 0:
        raise ValueError("weights_over_frames: total attention mass is 0")
    mentioned = np.asarray(sorted({int(e) for e in mentioned_event_ids}), dtype=np.int64)
    if mentioned.size == 0:
        raise ValueError("mentioned_event_ids is empty; a caption mentions at least one event")
    on_event = np.isin(ev, mentioned)
    return float(w[on_event].sum() / total)


def clean_token(token: str) -> str:
    """Readable form of a CLIP BPE token: drop the ``</w>`` suffix, name SOT/EOT."""
    if token in _SPECIAL_TOKENS:
        return _SPECIAL_TOKENS[token]
    return token.removesuffix("</w>")


def _dedupe(labels: list[str]) -> list[str]:
    """Make labels unique (plotly merges equal category labels): ``red``, ``red (2)``, ..."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    # a generated label may collide with a real one ("x (2)" in the text); suffix again
    if len(set(out)) != len(out):
        return _dedupe(out)
    return out


def label_nodes(
    kind: Literal["text", "video"],
    mask: Any,
    *,
    tokens: Sequence[str] | None = None,
    timestamps: Sequence[float] | None = None,
    unique: bool = True,
) -> list[str]:
    """Axis labels for the valid nodes of one text or video graph.

    - text: the token strings (``tokens``, cleaned by :func:`clean_token`), else ``w{i}``;
    - video: ``f{i}``, or ``f{i} @ {t:.2f}s`` when ``timestamps`` (seconds) are given,
      ``i`` being the frame position in the padded sequence.

    ``tokens`` / ``timestamps`` may have one entry per node (``N``) or one per valid node
    (``N'``). With ``unique`` (default) repeated labels get a suffix, ``red``, ``red (2)``, so
    that chart axes keep them apart.

    Shapes:
        mask ``[N]`` -> list of ``N' = mask.sum()`` strings.
    """
    valid = _check_mask(mask)
    positions = np.flatnonzero(valid)
    n, n_valid = valid.shape[0], positions.size

    def pick(values: Sequence[Any], name: str) -> list[Any]:
        values = list(values)
        if len(values) == n:
            return [values[i] for i in positions]
        if len(values) == n_valid:
            return values
        raise ValueError(
            f"{name}: expected {n} entries (one per node) or {n_valid} (one per valid node), "
            f"got {len(values)}"
        )

    if kind == "text":
        if timestamps is not None:
            raise ValueError("timestamps apply to video nodes, not text")
        if tokens is None:
            labels = [f"w{i}" for i in positions]
        else:
            labels = [clean_token(str(t)) for t in pick(tokens, "tokens")]
    elif kind == "video":
        if tokens is not None:
            raise ValueError("tokens apply to text nodes, not video")
        if timestamps is None:
            labels = [f"f{i}" for i in positions]
        else:
            times = pick(timestamps, "timestamps")
            labels = [frame_label(i, t) for i, t in zip(positions, times, strict=True)]
    else:
        raise ValueError(f"kind={kind!r}: expected 'text' or 'video'")
    return _dedupe(labels) if unique else labels
