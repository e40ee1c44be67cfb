"""Geometry of a joint text-video embedding space: the modality gap and hubs.

- :func:`modality_gap`: the distance between the text and the video centroids of the
  L2-normalised pooled embeddings (the "modality gap" of Liang et al., NeurIPS 2022, *Mind
  the Gap*), with the cosine of matched caption-video pairs against random mismatched pairs.
- :func:`top_hubs`: the gallery items that occur in the most top-k lists, from the
  k-occurrences of :func:`analysis.hard_negatives.hubness`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def _unit_rows(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty [N, D] array, got shape {a.shape}")
    if not np.isfinite(a).all():
        row = int(np.flatnonzero(~np.isfinite(a).all(axis=1))[0])
        raise ValueError(f"{name}: row {row} contains non-finite values")
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class ModalityGap:
    """The modality gap of one model on one split.

    Attributes:
        centroid_distance: ``||mean(t) - mean(v)||`` over the L2-normalised pooled texts
            ``t`` and videos ``v`` (0 when the two clouds share a centre; at most 2).
        text_centroid_norm: ``||mean(t)||`` (1 when all captions point the same way, near 0
            when they spread over the sphere).
        video_centroid_norm: ``||mean(v)||``.
        matched_cos: ``[Nt]`` cosine of every caption with its ground-truth video.
        random_cos: ``[R]`` cosine of random caption-video pairs with a different video.
        random_pairs: ``[R, 2]`` int64 the (caption, video) of each random pair.
    """

    centroid_distance: float
    text_centroid_norm: float
    video_centroid_norm: float
    matched_cos: np.ndarray
    random_cos: np.ndarray
    random_pairs: np.ndarray

    @property
    def matched_mean(self) -> float:
        return float(self.matched_cos.mean())

    @property
    def random_mean(self) -> float:
        """Mean cosine of the random pairs (NaN when there are none)."""
        return float(self.random_cos.mean()) if self.random_cos.size else float("nan")


def modality_gap(
    text_pooled: Any,
    video_pooled: Any,
    text_to_video: Any,
    *,
    n_random: int | None = None,
    seed: int = 0,
) -> ModalityGap:
    """Centroid distance and matched vs random pair cosines of pooled embeddings.

    Args:
        text_pooled: ``[Nt, D]`` pooled caption embeddings (any scale; normalised here).
        video_pooled: ``[Nv, D]`` pooled video embeddings.
        text_to_video: ``[Nt]`` ground-truth video of each caption.
        n_random: random mismatched pairs to draw (default ``Nt``); each draws a caption
            uniformly and a video uniformly among the others. No pairs when ``Nv < 2``.
        seed: seed of the draw (deterministic).

    Returns:
        A :class:`ModalityGap`.

    Shapes:
        text_pooled ``[Nt, D]``, video_pooled ``[Nv, D]``, text_to_video ``[Nt]`` ->
        matched_cos ``[Nt]``, random_cos ``[R]``.
    """
    t = _unit_rows(text_pooled, "text_pooled")
    v = _unit_rows(video_pooled, "video_pooled")
    if t.shape[1] != v.shape[1]:
        raise ValueError(
            f"text_pooled has dim {t.shape[1]} but video_pooled has dim {v.shape[1]}"
        )
    t2v = np.asarray(text_to_video)
    if t2v.shape != (t.shape[0],) or not np.issubdtype(t2v.dtype, np.integer):
        raise ValueError(
            f"text_to_video: expected {t.shape[0]} integer video indices (one per caption), "
            f"got shape {t2v.shape} dtype {t2v.dtype}"
        )
    bad = (t2v < 0) | (t2v >= v.shape[0])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"text_to_video[{i}] = {int(t2v[i])} is not a video (0..{v.shape[0] - 1})")
    n = t.shape[0] if n_random is None else int(n_random)
    if n < 0:
        raise ValueError(f"n_random={n_random!r}: expected a non-negative integer")

    t_mean, v_mean = t.mean(axis=0), v.mean(axis=0)
    matched = np.einsum("nd,nd->n", t, v[t2v])
    if v.shape[0] < 2 or n == 0:
        pairs = np.zeros((0, 2), dtype=np.int64)
    else:
        rng = np.random.default_rng(seed)
        texts = rng.integers(0, t.shape[0], size=n)
        # a uniform draw among the Nv - 1 other videos: skip over the ground truth
        others = rng.integers(0, v.shape[0] - 1, size=n)
        videos = others + (others >= t2v[texts])
        pairs = np.stack([texts, videos], axis=1).astype(np.int64)
    random = np.einsum("nd,nd->n", t[pairs[:, 0]], v[pairs[:, 1]])
    return ModalityGap(
        centroid_distance=float(np.linalg.norm(t_mean - v_mean)),
        text_centroid_norm=float(np.linalg.norm(t_mean)),
        video_centroid_norm=float(np.linalg.norm(v_mean)),
        matched_cos=matched.astype(np.float32),
        random_cos=random.astype(np.float32),
        random_pairs=pairs,
    )


def top_hubs(counts: Any, n: int = 10) -> np.ndarray:
    """The ``n`` items with the largest k-occurrence, largest first, ties by lower index.

    Args:
        counts: ``[N]`` k-occurrences (:func:`analysis.hard_negatives.hubness`).
        n: how many (clipped to N).

    Shapes:
        counts ``[N]`` -> ``[min(n, N)]`` int64 item indices.
    """
    c = np.asarray(counts)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"counts: expected a non-empty 1-D array, got shape {c.shape}")
    if int(n) < 1:
        raise ValueError(f"n={n!r}: expected a positive integer")
    return np.argsort(-c.astype(np.float64), kind="stable")[: int(n)].astype(np.int64)
