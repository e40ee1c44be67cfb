"""Hard negatives, score margins, hubness and word-frame similarity over a similarity matrix.

Conventions: ``sim`` is a float ``[Nt, Nv]`` matrix with texts on rows; ``text_to_video[i]`` is
the column of text ``i``'s ground-truth video. A *negative* of text ``i`` is any other column.
Every function here is plain numpy and works block by block over rows, so a matrix with many
queries never needs a second full-size copy. Hard negatives and margins are views of the
per-caption ranking of :mod:`analysis.ranked_negatives` (which a bundle stores, so the app
reads them without scanning the matrix); these functions rank over a given matrix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from analysis.ranked_negatives import HardNegatives, ranked_negatives
from analysis.top_k import check_similarity, top_k_stable

logger = logging.getLogger(__name__)

_BLOCK_ROWS = 2048  # rows of sim processed at once


def hard_negatives(
    sim: Any,
    text_to_video: Any,
    *,
    video_to_family: Any | None = None,
    k: int = 10,
) -> HardNegatives:
    """Find the ``k`` hardest negatives of every text query and its score margin.

    Args:
        sim: ``[Nt, Nv]`` similarity, texts on rows (at least two videos).
        text_to_video: ``[Nt]`` int ground-truth column per text.
        video_to_family: optional ``[Nv]`` family id per video (ints or strings); marks
            negatives from the ground truth's own family.
        k: columns of the per-query arrays; at most ``Nv - 1`` are filled (negatives kept).

    Returns:
        A :class:`~analysis.ranked_negatives.HardNegatives`
        (:meth:`~analysis.ranked_negatives.RankedNegatives.hard_negatives` of
        :func:`~analysis.ranked_negatives.ranked_negatives`). Equal scores among the negatives
        are ordered by lower video index.

    Shapes:
        sim ``[Nt, Nv]``, text_to_video ``[Nt]``, video_to_family ``[Nv]`` ->
        per-query ``[Nt, k]`` and ``[Nt]`` arrays.
    """
    return ranked_negatives(sim, text_to_video, k, purpose="hard negatives").hard_negatives(
        int(k), video_to_family=video_to_family)


def margin_distribution(sim: Any, text_to_video: Any) -> np.ndarray:
    """Per-query margin ``s(GT) - max_{v != GT} s(v)``.

    A positive margin means the query is retrieved at rank 1; a negative one means at least one
    negative scores above the ground truth, and zero a tie at the top, which also ranks the
    ground truth below 1 (ties count against the model).

    Shapes:
        sim ``[Nt, Nv]`` (Nv >= 2), text_to_video ``[Nt]`` -> ``[Nt]`` float32.
    """
    return ranked_negatives(sim, text_to_video, 1, purpose="margins").margins()


@dataclass(frozen=True)
class HubnessSummary:
    """Summary of a k-occurrence distribution (Radovanović et al., JMLR 2010).

    Attributes:
        k: neighbourhood size.
        skew: skewness ``E[(N_k - mean)^3] / std^3`` of the k-occurrences (population moments,
            ``scipy.stats.skew(bias=True)``);
            0 for a constant distribution. Large positive values mean a few hubs dominate.
        mean: mean k-occurrence (= k * n_queries / n_items).
        max: largest k-occurrence (the strongest hub).
        antihub_share: fraction of items that occur in no top-k list.
    """

    k: int
    skew: float
    mean: float
    max: int
    antihub_share: float


def hubness(sim: Any, k: int = 10, *, direction: Literal["t2v", "v2t"] = "t2v") -> np.ndarray:
    """k-occurrence ``N_k``: how often each gallery item appears in the queries' top-k lists.

    Args:
        sim: ``[Nt, Nv]`` similarity, texts on rows.
        k: top-k size (1 <= k <= gallery size).
        direction: ``"t2v"`` counts videos in the texts' top-k lists (returns ``[Nv]``);
            ``"v2t"`` counts texts in the videos' top-k lists (returns ``[Nt]``).

    Returns:
        int64 counts; they sum to ``k`` times the number of queries. Ties at the k-th score
        are broken by lower index.
    """
    sim = check_similarity(sim)
    if direction == "v2t":
        sim = sim.T
    elif direction != "t2v":
        raise ValueError(f"direction={direction!r}: expected 't2v' or 'v2t'")
    n_query, n_gallery = sim.shape
    if not 1 <= int(k) <= n_gallery:
        raise ValueError(f"k={k!r}: expected 1 <= k <= {n_gallery} (the gallery size)")
    k = int(k)
    counts = np.zeros(n_gallery, dtype=np.int64)
    for start in range(0, n_query, _BLOCK_ROWS):
        block = np.asarray(sim[start : start + _BLOCK_ROWS], dtype=np.float64)
        top = top_k_stable(block, k)  # [b, k]
        counts += np.bincount(np.asarray(top).ravel(), minlength=n_gallery)
    return counts


def hubness_summary(counts: Any, k: int) -> HubnessSummary:
    """Summarise k-occurrences from :func:`hubness` (skewness, max, anti-hubs)."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"counts: expected a non-empty 1-D array of k-occurrences, got {c.shape}")
    if (c < 0).any():
        raise ValueError("counts: k-occurrences must be >= 0")
    mean = float(c.mean())
    var = float(c.var())
    # scipy returns NaN for a constant distribution; we report 0 (no hubs)
    skew = 0.0 if var <= 1e-12 * max(1.0, mean**2) else float(stats.skew(c, bias=True))
    return HubnessSummary(
        k=int(k),
        skew=skew,
        mean=mean,
        max=int(c.max()),
        antihub_share=float((c == 0).mean()),
    )


def _valid_rows(tokens: Any, mask: Any, name: str) -> np.ndarray:
    x = np.asarray(tokens, dtype=np.float64)
    m = np.asarray(mask)
    if x.ndim != 2:
        raise ValueError(f"{name}_tokens: expected [N, D], got shape {x.shape}")
    if m.shape != (x.shape[0],):
        raise ValueError(f"{name}_mask: expected shape ({x.shape[0]},), got {m.shape}")
    keep = m.astype(bool)
    if not keep.any():
        raise ValueError(f"{name}_mask has no valid position")
    x = x[keep]
    if not np.isfinite(x).all():
        raise ValueError(f"{name}_tokens: valid tokens contain non-finite values")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def word_frame_matrix(
    text_tokens: Any, text_mask: Any, video_tokens: Any, video_mask: Any
) -> np.ndarray:
    """Cosine similarity between every valid word token and every valid frame token.

    A generic view for heads without a ``token_similarity`` of their own. Rows follow the
    valid text positions in order (``np.flatnonzero(text_mask)``), columns the valid frames.
    A zero vector has cosine 0 with everything.

    Shapes:
        text_tokens ``[L, D]``, text_mask ``[L]``, video_tokens ``[T, D]``, video_mask ``[T]``
        -> ``[L', T']`` float32 with ``L' = text_mask.sum()``, ``T' = video_mask.sum()``.
    """
    t = _valid_rows(text_tokens, text_mask, "text")
    v = _valid_rows(video_tokens, video_mask, "video")
    if t.shape[1] != v.shape[1]:
        raise ValueError(
            f"text_tokens have dim {t.shape[1]} but video_tokens have dim {v.shape[1]}"
        )
    return (t @ v.T).astype(np.float32)
