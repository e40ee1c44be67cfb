"""The hardest negatives of every caption query, ranked once: what the per-query views read.

A pass over the ``[Nt, Nv]`` similarity keeps, per caption, its ``K`` best-scoring negative
videos (every video but the ground truth; best first, equal scores by lower video index), their
scores, the ground truth's score and how many negatives score at least as high as it
(:class:`RankedNegatives`). Everything the analysis pages show about hard negatives, margins,
failures' top lists and hubness (for ``k <= K``) follows from these ``O(Nt K)`` numbers
exactly, so the export computes them once (:func:`ranked_negatives`, stored in the bundle) and
the app never scans the whole matrix (715 MB at MSR-VTT's full test split, 59,800 x 2,990).

Tie rules (every one reproduces the definition over the full row):

- ranks count ties against the model: ``rank = 1 + n_at_or_above`` (:func:`tvr.metrics.t2v_ranks`);
- hard negatives: score descending, then lower video index (:func:`hard_negatives`);
- a failure's top list: the same order with the ground truth after every negative of equal
  score, i.e. at position ``rank`` (:meth:`RankedNegatives.top_videos`);
- hubness: the top-k of all videos, score descending then lower index, the ground truth like any
  other video (:meth:`RankedNegatives.hubness`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.top_k import check_similarity, check_text_to_video, negatives_block, top_k_stable

NEGATIVES_K = 50  # negatives kept per caption: the largest k the pages offer (hubness)
_BLOCK_ROWS = 2048  # rows of the similarity ranked at once


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


@dataclass(frozen=True)
class RankedNegatives:
    """The ``K`` hardest negatives of every caption query (``K = min(k, Nv - 1)``).

    Attributes:
        video_ids: ``[Nt, K]`` int negative video columns, best first (ties: lower index).
        scores: ``[Nt, K]`` float32 their scores.
        gt_videos: ``[Nt]`` int the ground-truth column of each caption.
        gt_scores: ``[Nt]`` float32 the ground truth's score.
        n_at_or_above: ``[Nt]`` int negatives scoring ``>=`` the ground truth, over all videos
            (the caption's rank is ``1 +`` this).
        num_videos: ``Nv``, the gallery size.
    """

    video_ids: np.ndarray
    scores: np.ndarray
    gt_videos: np.ndarray
    gt_scores: np.ndarray
    n_at_or_above: np.ndarray
    num_videos: int

    def __post_init__(self) -> None:
        n, k = self.video_ids.shape
        if self.scores.shape != (n, k):
            raise ValueError(f"scores: expected shape {(n, k)} like video_ids, "
                             f"got {self.scores.shape}")
        for name in ("gt_videos", "gt_scores", "n_at_or_above"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name}: expected shape ({n},), got "
                                 f"{getattr(self, name).shape}")
        if not 1 <= k <= self.num_videos - 1:
            raise ValueError(f"{k} negatives per caption for {self.num_videos} videos: expected "
                             f"between 1 and {self.num_videos - 1}")

    @property
    def k(self) -> int:
        """Negatives kept per caption."""
        return int(self.video_ids.shape[1])

    @property
    def num_texts(self) -> int:
        return int(self.video_ids.shape[0])

    @property
    def ranks(self) -> np.ndarray:
        """``[Nt]`` int64 ranks of the ground truth (ties against the model)."""
        return 1 + np.asarray(self.n_at_or_above, dtype=np.int64)

    def _need(self, k: int, what: str) -> int:
        if isinstance(k, bool) or int(k) < 1:
            raise ValueError(f"k={k!r}: expected a positive integer")
        if int(k) > self.k:
            raise ValueError(f"{what} needs {int(k)} negatives per caption; {self.k} were kept "
                             "(rank them again from the similarity with a larger k)")
        return int(k)

    # ------------------------------------------------------------------ views
    def hard_negatives(self, k: int, *, video_to_family: Any | None = None) -> HardNegatives:
        """The ``k`` hardest negatives per caption as :class:`HardNegatives` (``k <= K``,
        or ``k`` above ``Nv - 1`` with the columns past ``Nv - 1`` padded), exactly as
        :func:`analysis.hard_negatives.hard_negatives` over the full similarity.

        Shapes:
            video_to_family ``[Nv]`` -> per-query ``[Nt, k]`` and ``[Nt]`` arrays.
        """
        kk = self._need(min(k, self.num_videos - 1), f"{k} hard negatives")  # checks k too
        k = int(k)
        n = self.num_texts
        ids = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), np.nan, dtype=np.float32)
        ids[:, :kk] = self.video_ids[:, :kk]
        scores[:, :kk] = self.scores[:, :kk]
        gt = np.asarray(self.gt_scores, dtype=np.float32)
        at_or_above = np.zeros((n, k), dtype=bool)
        at_or_above[:, :kk] = scores[:, :kk] >= gt[:, None]
        family = None
        if video_to_family is not None:
            family = np.asarray(video_to_family)
            if family.shape != (self.num_videos,):
                raise ValueError(
                    f"video_to_family: expected shape ({self.num_videos},) (one family per "
                    f"video), got {family.shape}")
        same_family = None
        if family is not None:
            valid = ids >= 0
            gt_family = family[np.asarray(self.gt_videos, dtype=np.int64)]
            same_family = valid & (family[np.where(valid, ids, 0)] == gt_family[:, None])
        return HardNegatives(
            video_ids=ids,
            scores=scores,
            at_or_above_gt=at_or_above,
            n_at_or_above_gt=np.asarray(self.n_at_or_above, dtype=np.int64).copy(),
            gt_scores=gt.copy(),
            margin=self.margins(),
            same_family=same_family,
        )

    def margins(self) -> np.ndarray:
        """``[Nt]`` float32 ``s(GT) - max s(negative)`` (negative when a video beats the ground
        truth, 0 on a tie), as :func:`analysis.hard_negatives.margin_distribution`."""
        self._need(1, "a margin")
        gt = np.asarray(self.gt_scores, dtype=np.float64)
        return (gt - np.asarray(self.scores[:, 0], dtype=np.float64)).astype(np.float32)

    def hardest(self) -> tuple[np.ndarray, np.ndarray]:
        """The best-scoring negative of every caption and the margin to it:
        ``([Nt] int64, [Nt] float64)``."""
        self._need(1, "the hardest negative")
        gt = np.asarray(self.gt_scores, dtype=np.float64)
        return (np.asarray(self.video_ids[:, 0], dtype=np.int64).copy(),
                gt - np.asarray(self.scores[:, 0], dtype=np.float64))

    def top_videos(self, rows: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best videos of captions ``rows`` over the whole gallery, the ground truth
        after every negative of equal score (so at position ``rank`` when ``rank <= n``).

        Shapes:
            rows ``[F]`` -> (``[F, min(n, Nv)]`` int64 videos, same shape float64 scores)
        """
        rows = np.asarray(rows, dtype=np.int64)
        n = min(int(n), self.num_videos)
        self._need(min(n, self.num_videos - 1), f"a top-{n} list")
        negs = np.asarray(self.video_ids[rows], dtype=np.int64)  # [F, K]
        neg_scores = np.asarray(self.scores[rows], dtype=np.float64)
        place = np.asarray(self.n_at_or_above[rows], dtype=np.int64)[:, None]  # GT's position
        j = np.arange(n)[None, :]
        src = np.minimum(j - (j > place), self.k - 1)  # negatives shift past the GT
        ids = np.take_along_axis(negs, src, axis=1)
        scores = np.take_along_axis(neg_scores, src, axis=1)
        is_gt = j == place
        ids = np.where(is_gt, np.asarray(self.gt_videos, dtype=np.int64)[rows][:, None], ids)
        scores = np.where(is_gt, np.asarray(self.gt_scores, dtype=np.float64)[rows][:, None],
                          scores)
        return ids, scores

    def hubness(self, k: int) -> np.ndarray:
        """k-occurrence of every video in the captions' top-k lists over the whole gallery
        (ties by lower index, the ground truth like any video), as
        :func:`analysis.hard_negatives.hubness` with ``direction="t2v"``.

        Shapes:
            -> ``[Nv]`` int64, summing to ``k * Nt``.
        """
        if isinstance(k, bool) or not 1 <= int(k) <= self.num_videos:
            raise ValueError(f"k={k!r}: expected 1 <= k <= {self.num_videos} (the gallery size)")
        k = int(k)
        kk = min(k, self.num_videos - 1)
        self._need(kk, f"hubness at k={k}")
        gt = np.asarray(self.gt_videos, dtype=np.int64)
        g = np.asarray(self.gt_scores, dtype=np.float64)[:, None]
        s = np.asarray(self.scores[:, :kk], dtype=np.float64)
        ids = np.asarray(self.video_ids[:, :kk], dtype=np.int64)
        ahead = np.count_nonzero((s > g) | ((s == g) & (ids < gt[:, None])), axis=1)  # [Nt]
        gt_in = ahead < k  # the ground truth takes one of the k places
        counts = np.bincount(gt[gt_in], minlength=self.num_videos)
        counts += np.bincount(ids[:, : k - 1].ravel(), minlength=self.num_videos)
        if kk >= k:  # rows without the ground truth list their k-th negative too
            counts += np.bincount(ids[~gt_in, k - 1], minlength=self.num_videos)
        return counts.astype(np.int64)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays as stored in a bundle (``negatives.safetensors``)."""
        return {
            "video_ids": np.ascontiguousarray(self.video_ids, dtype=np.int32),
            "scores": np.ascontiguousarray(self.scores, dtype=np.float32),
            "gt_videos": np.ascontiguousarray(self.gt_videos, dtype=np.int64),
            "gt_scores": np.ascontiguousarray(self.gt_scores, dtype=np.float32),
            "n_at_or_above": np.ascontiguousarray(self.n_at_or_above, dtype=np.int64),
        }


def ranked_negatives(sim: Any, text_to_video: Any, k: int = NEGATIVES_K, *,
                     purpose: str = "negatives") -> RankedNegatives:
    """Rank every caption's negatives once over the similarity, keeping the best ``k``.

    Args:
        sim: ``[Nt, Nv]`` similarity, texts on rows (finite; at least two videos).
        text_to_video: ``[Nt]`` int ground-truth column per text.
        k: negatives kept per caption (``min(k, Nv - 1)`` are).
        purpose: what the caller computes, for the error on a one-video matrix
            (``"margins need at least 2 videos"``).

    Returns:
        :class:`RankedNegatives`.

    Shapes:
        sim ``[Nt, Nv]``, text_to_video ``[Nt]`` -> ``[Nt, min(k, Nv - 1)]`` arrays.
    """
    sim = check_similarity(sim)
    t2v = check_text_to_video(text_to_video, sim)
    n_text, n_video = sim.shape
    if n_video < 2:
        raise ValueError(f"sim has {n_video} video column; {purpose} need at least 2 videos")
    if isinstance(k, bool) or int(k) < 1:
        raise ValueError(f"k={k!r}: expected a positive integer")
    kk = min(int(k), n_video - 1)
    ids = np.empty((n_text, kk), dtype=np.int64)
    scores = np.empty((n_text, kk), dtype=np.float32)
    n_ge = np.empty(n_text, dtype=np.int64)
    gt = np.asarray(sim[np.arange(n_text), t2v], dtype=np.float32)
    for start in range(0, n_text, _BLOCK_ROWS):
        stop = min(n_text, start + _BLOCK_ROWS)
        block = negatives_block(sim, t2v, start, stop)  # [b, Nv] float64, GT = -inf
        n_ge[start:stop] = np.count_nonzero(block >= gt[start:stop, None], axis=1)
        top = top_k_stable(block, kk)  # [b, kk]
        ids[start:stop] = top
        scores[start:stop] = np.take_along_axis(block, top, axis=1)
    return RankedNegatives(video_ids=ids, scores=scores, gt_videos=t2v, gt_scores=gt,
                           n_at_or_above=n_ge, num_videos=int(n_video))


def negatives_from_arrays(arrays: dict[str, np.ndarray], num_videos: int) -> RankedNegatives:
    """A :class:`RankedNegatives` from the arrays of :meth:`RankedNegatives.arrays`.

    Raises:
        ValueError: an array is missing or of the wrong shape.
    """
    missing = sorted({"video_ids", "scores", "gt_videos", "gt_scores", "n_at_or_above"}
                     - set(arrays))
    if missing:
        raise ValueError(f"ranked negatives: arrays {missing} are missing")
    return RankedNegatives(video_ids=arrays["video_ids"], scores=arrays["scores"],
                           gt_videos=arrays["gt_videos"], gt_scores=arrays["gt_scores"],
                           n_at_or_above=arrays["n_at_or_above"], num_videos=int(num_videos))


def bundle_negatives(bundle: Any) -> RankedNegatives:
    """An :class:`analysis.bundle.Bundle`'s ranked negatives: stored by its export
    (``bundle.negatives``), or ranked now from its similarity (a bundle exported before they
    were stored; a pass over the whole ``[Nt, Nv]`` matrix)."""
    stored = bundle.negatives
    if stored is not None:
        return stored
    return ranked_negatives(bundle.sim, bundle.text_to_video)
