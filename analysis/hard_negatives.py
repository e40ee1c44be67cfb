"""Hard negatives, score margins, hubness and word-frame similarity over a similarity matrix.

Conventions: ``sim`` is a float ``[Nt, Nv]`` matrix with texts on rows; ``text_to_video[i]`` is
the column of text ``i``'s ground-truth video. A *negative* of text ``i`` is any other column.
Every function here is plain numpy and works block by block over rows, so a matrix with many
queries never needs a second full-size copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

logger = logging.getLogger(__name__)

_BLOCK_ROWS = 2048  # rows of sim processed at once


def _check_sim(sim: Any, name: str = "sim") -> np.ndarray:
    arr = np.asarray(sim)
    if arr.ndim != 2:
        raise ValueError(
            f"{name}: expected a 2-D [Nt, Nv] similarity matrix, got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: empty similarity matrix of shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
        row, col = (int(x) for x in np.argwhere(~finite)[0])
        raise ValueError(
            f"{name}[{row}, {col}] is {float(arr[row, col])}; similarity scores must be finite"
        )
    return arr


def _check_text_to_video(text_to_video: Any, sim: np.ndarray) -> np.ndarray:
    t2v = np.asarray(text_to_video)
    n_text, n_video = sim.shape
    if t2v.shape != (n_text,):
        raise ValueError(
            f"text_to_video: expected shape ({n_text},) (one video per row of sim), got {t2v.shape}"
        )
    if not np.issubdtype(t2v.dtype, np.integer):
        raise ValueError(f"text_to_video: expected integer video indices, got dtype {t2v.dtype}")
    bad = (t2v < 0) | (t2v >= n_video)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"text_to_video[{i}] = {int(t2v[i])} is not a column of sim (0..{n_video - 1})"
        )
    return t2v.astype(np.int64)


def _negatives_block(sim: np.ndarray, t2v: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of sim as float64 with the ground-truth column set to -inf."""
    block = sim[start:stop].astype(np.float64, copy=True)
    block[np.arange(stop - start), t2v[start:stop]] = -np.inf
    return block


def _tied_selection(block: np.ndarray, k: int) -> np.ndarray:
    """The exact selection of :func:`top_k_stable` (columns in ascending order): every score
    above the k-th best, then the lowest columns among those tied with it."""
    n_rows = block.shape[0]
    kth = -np.partition(-block, k - 1, axis=1)[:, k - 1 : k]  # [b, 1] k-th best score
    above = block > kth
    need = k - above.sum(axis=1, keepdims=True)  # slots left for scores tied with the k-th
    tied = block == kth
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= need))
    return np.nonzero(chosen)[1].reshape(n_rows, k)  # exactly k per row, index ascending


def top_k_stable(block: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` best scores per row, by score descending then index ascending.

    An ``argpartition`` picks k best columns per row; only rows where a column left out ties
    the k-th best score (so the index rule decides) are selected again exactly.

    Shapes:
        block ``[b, n]`` -> ``[b, k]`` int64 (requires ``1 <= k <= n``).
    """
    n_rows, n_cols = block.shape
    if k >= n_cols:
        sel = np.broadcast_to(np.arange(n_cols), block.shape)
    else:
        sel = np.argpartition(-block, k - 1, axis=1)[:, :k]  # [b, k], ties at the k-th: any
        vals = np.take_along_axis(block, sel, axis=1)
        kth = vals.min(axis=1, keepdims=True)
        undecided = np.flatnonzero((block == kth).sum(axis=1) > (vals == kth).sum(axis=1))
        if undecided.size:
            sel[undecided] = _tied_selection(block[undecided], k)
    scores = np.take_along_axis(block, sel, axis=1)
    order = np.lexsort((sel, -scores), axis=1)  # score descending, then index ascending
    return np.take_along_axis(sel, order, axis=1).astype(np.int64)


@dataclass(frozen=True)
class HardNegatives:
    """The hardest negatives of every text query.

    Attributes:
        video_ids: ``[Nt, k]`` int64, the ``k`` highest-scoring negative videos per query,
            best first (``-1`` padding when there are fewer than ``k`` negatives).
        scores: ``[Nt, k]`` float32 their scores (NaN padding).
        at_or_above_gt: ``[Nt, k]`` bool, the negative scores ``>=`` the ground truth (a tie
            counts against the model, so each of these worsens the rank).
        n_at_or_above_gt: ``[Nt]`` int64, negatives scoring ``>=`` the ground truth, counted
            over all videos (may exceed ``k``); the query's rank is ``1 +`` this count
            (:func:`tvr.metrics.t2v_ranks`).
        gt_scores: ``[Nt]`` float32 ``s(GT)``.
        margin: ``[Nt]`` float32 ``s(GT) - max s(negative)``; negative when a negative beats
            the ground truth.
        same_family: ``[Nt, k]`` bool, the negative belongs to the ground truth's family
            (SynthVTT siblings), or None when no ``video_to_family`` was given.
    """

    video_ids: np.ndarray
    scores: np.ndarray
    at_or_above_gt: np.ndarray
    n_at_or_above_gt: np.ndarray
    gt_scores: np.ndarray
    margin: np.ndarray
    same_family: np.ndarray | None = None

    def confusers(self, query: int) -> list[tuple[int, float]]:
        """``(video, score)`` of query ``query``'s negatives scoring ``>=`` its GT (top k only)."""
        keep = self.at_or_above_gt[query]
        return [
            (int(v), float(s))
            for v, s in zip(self.video_ids[query][keep], self.scores[query][keep], strict=True)
        ]


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
        A :class:`HardNegatives`. Equal scores among the negatives are ordered by lower video
        index.

    Shapes:
        sim ``[Nt, Nv]``, text_to_video ``[Nt]``, video_to_family ``[Nv]`` ->
        per-query ``[Nt, k]`` and ``[Nt]`` arrays.
    """
    sim = _check_sim(sim)
    t2v = _check_text_to_video(text_to_video, sim)
    n_text, n_video = sim.shape
    if n_video < 2:
        raise ValueError(f"sim has {n_video} video column; hard negatives need at least 2 videos")
    if int(k) < 1:
        raise ValueError(f"k={k!r}: expected a positive integer")
    kk = min(int(k), n_video - 1)
    family = None
    if video_to_family is not None:
        family = np.asarray(video_to_family)
        if family.shape != (n_video,):
            raise ValueError(
                f"video_to_family: expected shape ({n_video},) (one family per column of sim), "
                f"got {family.shape}"
            )

    ids = np.full((n_text, int(k)), -1, dtype=np.int64)
    scores = np.full((n_text, int(k)), np.nan, dtype=np.float32)
    at_or_above = np.zeros((n_text, int(k)), dtype=bool)
    n_ge = np.empty(n_text, dtype=np.int64)
    margin = np.empty(n_text, dtype=np.float32)
    gt = sim[np.arange(n_text), t2v].astype(np.float64)  # [Nt]
    for start in range(0, n_text, _BLOCK_ROWS):
        stop = min(n_text, start + _BLOCK_ROWS)
        block = _negatives_block(sim, t2v, start, stop)  # [b, Nv] float64, GT = -inf
        gt_block = gt[start:stop, None]  # [b, 1]
        n_ge[start:stop] = np.count_nonzero(block >= gt_block, axis=1)
        top = top_k_stable(block, kk)  # [b, kk]
        top_scores = np.take_along_axis(block, top, axis=1)  # [b, kk] float64
        ids[start:stop, :kk] = top
        scores[start:stop, :kk] = top_scores
        at_or_above[start:stop, :kk] = top_scores >= gt_block
        margin[start:stop] = gt_block[:, 0] - top_scores[:, 0]
    valid = ids >= 0
    same_family = None
    if family is not None:
        gt_family = family[t2v]  # [Nt]
        same_family = valid & (family[np.where(valid, ids, 0)] == gt_family[:, None])
    return HardNegatives(
        video_ids=ids,
        scores=scores,
        at_or_above_gt=at_or_above,
        n_at_or_above_gt=n_ge,
        gt_scores=gt.astype(np.float32),
        margin=margin,
        same_family=same_family,
    )


def margin_distribution(sim: Any, text_to_video: Any) -> np.ndarray:
    """Per-query margin ``s(GT) - max_{v != GT} s(v)``.

    A positive margin means the query is retrieved at rank 1; a negative one means at least one
    negative scores above the ground truth, and zero a tie at the top, which also ranks the
    ground truth below 1 (ties count against the model).

    Shapes:
        sim ``[Nt, Nv]`` (Nv >= 2), text_to_video ``[Nt]`` -> ``[Nt]`` float32.
    """
    sim = _check_sim(sim)
    t2v = _check_text_to_video(text_to_video, sim)
    n_text, n_video = sim.shape
    if n_video < 2:
        raise ValueError(f"sim has {n_video} video column; margins need at least 2 videos")
    out = np.empty(n_text, dtype=np.float32)
    rows = np.arange(n_text)
    for start in range(0, n_text, _BLOCK_ROWS):
        stop = min(n_text, start + _BLOCK_ROWS)
        block = _negatives_block(sim, t2v, start, stop)
        gt = sim[rows[start:stop], t2v[start:stop]].astype(np.float64)
        out[start:stop] = gt - block.max(axis=1)
    return out


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
    sim = _check_sim(sim)
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
