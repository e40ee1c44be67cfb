"""Retrieval metrics: tie-safe ranks, R@K, MdR, MnR, multi-caption v2t.

Conventions (spec ``data_and_metrics.md`` §11-12):

- ``sim`` is a text x video similarity matrix ``S [Nt, Nv]`` (texts are rows) and
  ``text_to_video [Nt]`` gives the ground-truth video index of every caption.
- **Rank** (1-based, pessimistic): ``rank(q) = 1 + #{j != g(q) : S_qj >= S_q,g(q)}``. Ties count
  *against* the model, so a collapsed model whose scores are all equal reads R@1 ~ 0 (every rank
  is the gallery size), never 100. Ties are *reported*: a query is tied when some other gallery
  item scores exactly its ground-truth score; where any query is tied, the optimistic figures
  (``1 + #{j : S_qj > S_q,g(q)}``) are reported beside the project ones (keys ending in
  ``_optimistic``) and a warning is logged. This module is the one implementation of the rule;
  ``analysis`` reads its ranks. Legacy code (CLIP4Clip ``compute_metrics``, argsort ranks)
  treats ties differently; on untied data all conventions agree.
- **MdR** uses the numpy convention (mean of the two middle values for an even N).
- Scores are compared in float32. Any NaN or inf in a row used for ranking is an error that
  names the query; rows are never dropped silently.
- **v2t with one caption per video** ranks the rows of ``S^T``. **With several captions per
  video** (MSVD, VATEX) the default is the MSVD protocol: the captions of every candidate video
  collapse to their best score, ``M[v, w] = max_{q in caps(w)} S_qv`` (a V x V matrix), and
  ``rank(v) = 1 + #{w != v : M[v, w] >= M[v, v]}``. The alternative ``v2t_any`` (position of the first
  correct caption among all captions) is always reported under its own label.
- Rows are processed in chunks (``chunk_size`` query rows at a time); since every rank is an
  integer count over one row, chunked and unchunked results are identical.

Test-time re-normalisations (DSL, QB-Norm) live in :mod:`tvr.renorm`; the checks and row
chunking of score matrices, shared with it, in :mod:`tvr.score_matrix`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from tvr.metric_ties import OPTIMISTIC_SUFFIX, tie_warning
from tvr.score_matrix import (
    ArrayLike,
    as_float32_matrix,
    check_chunk_size,
    check_finite_rows,
    chunks,
)

logger = logging.getLogger(__name__)

Direction = Literal["t2v", "v2t", "v2t_any"]

DEFAULT_RECALL_KS: tuple[int, ...] = (1, 5, 10, 50)
RANK_RULE = "1 + #{j != g : S_qj >= S_qg} (ties count against the model)"
RSUM_KS: tuple[int, ...] = (1, 5, 10)

# Protocol labels recorded next to every set of ranks.
PROTOCOL_T2V = "t2v"  # one query per caption against every video
PROTOCOL_V2T_SINGLE = "v2t_single_caption"  # rows of S^T, one caption per video
PROTOCOL_V2T_MSVD = "v2t_msvd_best_caption"  # V x V after collapsing to the best caption
PROTOCOL_V2T_ANY = "v2t_any_caption"  # first correct caption among all captions


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DirectionRanks:
    """Per-query ranks of one retrieval direction.

    Attributes:
        direction: ``"t2v"``, ``"v2t"`` or ``"v2t_any"``; the prefix of the metric keys.
        protocol: how the ranks were formed (one of the ``PROTOCOL_*`` labels).
        ranks: ``[N]`` int64, 1-based pessimistic ranks (1 + number of other items scoring at
            least the ground truth).
        tied: ``[N]`` bool, True where another item scored exactly the ground-truth score.
        optimistic_ranks: ``[N]`` int64, 1 + number of strictly better items (equal to
            ``ranks`` on untied queries); None means "same as ``ranks``".
    """

    direction: str
    protocol: str
    ranks: np.ndarray
    tied: np.ndarray
    optimistic_ranks: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of queries evaluated."""
        return int(self.ranks.shape[0])

    @property
    def num_ties(self) -> int:
        """Number of queries with at least one tie against their ground truth."""
        return int(self.tied.sum())

    @property
    def optimistic(self) -> np.ndarray:
        """``[N]`` ranks with ties in the model's favour (1 + #strictly better)."""
        return self.ranks if self.optimistic_ranks is None else self.optimistic_ranks

    def metrics(self, recall_ks: Sequence[int] = DEFAULT_RECALL_KS) -> dict[str, float]:
        """Summary metrics keyed ``"<direction>/R@K"``, ``MdR``, ``MnR``, ``RSum``, ``ties``, ``N``.

        When some query is tied, the optimistic figures are added beside them as
        ``"<direction>/R@K_optimistic"``, ``MdR_optimistic``, ``MnR_optimistic`` and
        ``RSum_optimistic``; untied results have no such keys (they would equal the others).

        Shapes:
            ranks, tied, optimistic_ranks: ``[N]``.
        """
        out = rank_metrics(self.ranks, recall_ks=recall_ks, prefix=self.direction, tied=self.tied)
        if self.num_ties:
            opt = rank_metrics(self.optimistic, recall_ks=recall_ks, prefix=self.direction)
            out.update(
                {
                    f"{k}{OPTIMISTIC_SUFFIX}": v
                    for k, v in opt.items()
                    if not k.endswith(("/N", "/ties"))
                }
            )
        return out


@dataclass(frozen=True)
class RetrievalResult:
    """Everything :func:`evaluate_retrieval` computes.

    Attributes:
        t2v: text-to-video ranks, one per caption.
        v2t: video-to-text ranks, one per video (MSVD protocol when videos have several captions).
        v2t_any: the labelled alternative v2t ranks; None when every video has exactly one
            caption (it then equals ``v2t``).
        metrics: flat ``{"t2v/R@1": ..., "v2t/MdR": ..., "RSum": ...}`` dict of floats.
    """

    t2v: DirectionRanks
    v2t: DirectionRanks
    v2t_any: DirectionRanks | None
    metrics: dict[str, float]

    @property
    def protocols(self) -> dict[str, str]:
        """``{direction: protocol label}`` for the reporting checklist (spec §16)."""
        out = {"t2v": self.t2v.protocol, "v2t": self.v2t.protocol}
        if self.v2t_any is not None:
            out["v2t_any"] = self.v2t_any.protocol
        return out


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _as_mapping(text_to_video: Any, n_text: int, n_video: int) -> np.ndarray:
    """Validate ``text_to_video`` against ``S [n_text, n_video]``; return int64 ``[n_text]``."""
    if isinstance(text_to_video, torch.Tensor):
        mapping = text_to_video.detach().cpu().numpy()
    else:
        mapping = np.asarray(text_to_video)
    if mapping.dtype.kind not in "iu":
        raise TypeError(f"text_to_video: expected integer video indices, got dtype {mapping.dtype}")
    if mapping.ndim != 1 or mapping.shape[0] != n_text:
        raise ValueError(
            f"text_to_video: expected shape ({n_text},) (one video index per similarity row), "
            f"got shape {mapping.shape}"
        )
    mapping = mapping.astype(np.int64, copy=False)
    bad = np.flatnonzero((mapping < 0) | (mapping >= n_video))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"text_to_video[{i}] = {int(mapping[i])} is out of range: the similarity matrix has "
            f"{n_video} video columns (valid indices 0..{n_video - 1}); {bad.size} bad entries"
        )
    return mapping


def _captions_per_video(mapping: np.ndarray, n_video: int) -> np.ndarray:
    """Caption counts per video; raise when a video has none (v2t needs a ground truth)."""
    counts = np.bincount(mapping, minlength=n_video)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        shown = ", ".join(str(int(v)) for v in missing[:10])
        more = f" (and {missing.size - 10} more)" if missing.size > 10 else ""
        raise ValueError(
            f"text_to_video: {missing.size} of {n_video} videos have no caption, so they have no "
            f"ground truth for v2t: video indices {shown}{more}"
        )
    return counts


# --------------------------------------------------------------------------------------------
# Ranks
# --------------------------------------------------------------------------------------------


RankBlock = tuple[np.ndarray, np.ndarray, np.ndarray]  # ranks, tied, optimistic ranks


def _count_rows(
    block: np.ndarray, gt_scores: np.ndarray, exclude: np.ndarray | None = None
) -> RankBlock:
    """Pessimistic ranks, tie flags and optimistic ranks of query rows ``block [c, G]``.

    ``rank = 1 + #{j != g : S_qj >= S_qg}`` (the project rule, §11.2) and ``optimistic = 1 +
    #{j : S_qj > S_qg}``. ``exclude [c, G]`` marks correct items that never count as competitors
    (v2t_any). Without it, the ground-truth item itself is the one equal score removed from the
    count.
    """
    gt = gt_scores[:, None]
    greater = block > gt  # [c, G]
    equal = block == gt  # [c, G]
    if exclude is not None:
        greater &= ~exclude
        equal &= ~exclude
        n_equal_others = equal.sum(axis=1)
    else:
        n_equal_others = equal.sum(axis=1) - 1  # the ground truth equals itself
    optimistic = 1 + greater.sum(axis=1, dtype=np.int64)
    return optimistic + n_equal_others, n_equal_others > 0, optimistic


def _ranks_in_chunks(
    sim: np.ndarray,
    direction: str,
    protocol: str,
    chunk_size: int | None,
    rank_block: Callable[[np.ndarray, int, int], RankBlock],
) -> DirectionRanks:
    """Rank the queries of one direction a block of rows at a time.

    The queries are the rows of ``sim`` for ``"t2v"`` and its columns otherwise. Each block
    ``[c, G]`` of query rows (queries ``lo..hi-1``) is checked for non-finite scores, then
    ``rank_block(block, lo, hi)`` gives its ranks, tie flags and optimistic ranks.
    """
    transposed = direction != "t2v"
    n_text, n_video = sim.shape
    n_queries, width = (n_video, n_text) if transposed else (n_text, n_video)
    rows = check_chunk_size(chunk_size, width)
    ranks = np.empty(n_queries, dtype=np.int64)
    tied = np.empty(n_queries, dtype=bool)
    optimistic = np.empty(n_queries, dtype=np.int64)
    for lo, hi in chunks(n_queries, rows):
        block = sim[:, lo:hi].T if transposed else sim[lo:hi]  # [c, Nt] or [c, Nv]
        check_finite_rows(block, lo, direction, transposed=transposed)
        ranks[lo:hi], tied[lo:hi], optimistic[lo:hi] = rank_block(block, lo, hi)
    return DirectionRanks(direction, protocol, ranks, tied, optimistic)


def _t2v(sim: np.ndarray, mapping: np.ndarray, chunk_size: int | None) -> DirectionRanks:
    def rank_block(block: np.ndarray, lo: int, hi: int) -> RankBlock:
        return _count_rows(block, block[np.arange(hi - lo), mapping[lo:hi]])

    return _ranks_in_chunks(sim, "t2v", PROTOCOL_T2V, chunk_size, rank_block)


def _v2t_single(sim: np.ndarray, mapping: np.ndarray, chunk_size: int | None) -> DirectionRanks:
    """One caption per video: rank the rows of ``S^T`` (gallery = all captions)."""
    n_text, n_video = sim.shape
    caption_of = np.empty(n_video, dtype=np.int64)
    caption_of[mapping] = np.arange(n_text)  # mapping is a permutation here

    def rank_block(block: np.ndarray, lo: int, hi: int) -> RankBlock:
        return _count_rows(block, block[np.arange(hi - lo), caption_of[lo:hi]])

    return _ranks_in_chunks(sim, "v2t", PROTOCOL_V2T_SINGLE, chunk_size, rank_block)


def _v2t_msvd(
    sim: np.ndarray, mapping: np.ndarray, counts: np.ndarray, chunk_size: int | None
) -> DirectionRanks:
    """Several captions per video: collapse to the best caption per candidate video (V x V)."""
    order = np.argsort(mapping, kind="stable")  # captions grouped by video
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])  # every group is non-empty

    def rank_block(block: np.ndarray, lo: int, hi: int) -> RankBlock:
        collapsed = np.maximum.reduceat(block[:, order], starts, axis=1)  # [c, Nv] = M[v, w]
        gt = collapsed[np.arange(hi - lo), np.arange(lo, hi)]  # M[v, v]
        return _count_rows(collapsed, gt)

    return _ranks_in_chunks(sim, "v2t", PROTOCOL_V2T_MSVD, chunk_size, rank_block)


def _v2t_any(sim: np.ndarray, mapping: np.ndarray, chunk_size: int | None) -> DirectionRanks:
    """Position of the first correct caption among all captions (labelled alternative)."""

    def rank_block(block: np.ndarray, lo: int, hi: int) -> RankBlock:
        own = mapping[None, :] == np.arange(lo, hi)[:, None]  # [c, Nt]
        best_own = np.where(own, block, -np.inf).max(axis=1)  # [c]
        return _count_rows(block, best_own, exclude=own)

    return _ranks_in_chunks(sim, "v2t_any", PROTOCOL_V2T_ANY, chunk_size, rank_block)


def direction_ranks(
    sim: ArrayLike,
    text_to_video: ArrayLike | Sequence[int],
    direction: Direction = "t2v",
    *,
    chunk_size: int | None = None,
) -> DirectionRanks:
    """Per-query ranks and tie flags for one direction.

    Args:
        sim: text x video similarities (numpy or torch; compared in float32).
        text_to_video: ground-truth video index of every caption.
        direction: ``"t2v"`` (one query per caption), ``"v2t"`` (one query per video; MSVD
            protocol when some video has several captions) or ``"v2t_any"``.
        chunk_size: query rows per block (None = automatic). Does not change the result.

    Returns:
        A :class:`DirectionRanks` with 1-based int64 ranks (ties against the model), bool tie
        flags and the optimistic ranks.

    Shapes:
        sim: ``[Nt, Nv]``; text_to_video: ``[Nt]``; ranks: ``[Nt]`` for t2v, ``[Nv]`` for v2t.

    Raises:
        ValueError: bad shapes, out-of-range indices, a video without captions (v2t), or a
            non-finite score (the message names the query).
    """
    s = as_float32_matrix(sim)
    mapping = _as_mapping(text_to_video, *s.shape)
    if direction == "t2v":
        return _t2v(s, mapping, chunk_size)
    if direction not in ("v2t", "v2t_any"):
        raise ValueError(f"direction: expected 't2v', 'v2t' or 'v2t_any', got {direction!r}")
    counts = _captions_per_video(mapping, s.shape[1])
    if direction == "v2t_any":
        return _v2t_any(s, mapping, chunk_size)
    if bool((counts == 1).all()):
        return _v2t_single(s, mapping, chunk_size)
    return _v2t_msvd(s, mapping, counts, chunk_size)


def t2v_ranks(
    sim: ArrayLike, text_to_video: ArrayLike | Sequence[int], chunk_size: int | None = None
) -> np.ndarray:
    """Text-to-video ranks: ``1 + #{other videos scoring at least the ground truth}``.

    Shapes:
        sim: ``[Nt, Nv]``; text_to_video: ``[Nt]``; returns int64 ``[Nt]``.
    """
    return direction_ranks(sim, text_to_video, "t2v", chunk_size=chunk_size).ranks


def v2t_ranks(
    sim: ArrayLike, text_to_video: ArrayLike | Sequence[int], chunk_size: int | None = None
) -> np.ndarray:
    """Video-to-text ranks: rows of ``S^T``, or the MSVD protocol with several captions per video.

    Shapes:
        sim: ``[Nt, Nv]``; text_to_video: ``[Nt]``; returns int64 ``[Nv]``.
    """
    return direction_ranks(sim, text_to_video, "v2t", chunk_size=chunk_size).ranks


def v2t_any_ranks(
    sim: ArrayLike, text_to_video: ArrayLike | Sequence[int], chunk_size: int | None = None
) -> np.ndarray:
    """Labelled alternative v2t: rank of the video's best own caption among all captions.

    ``rank(v) = 1 + #{q not in caps(v) : S_qv >= max_{q' in caps(v)} S_q'v}``.

    Shapes:
        sim: ``[Nt, Nv]``; text_to_video: ``[Nt]``; returns int64 ``[Nv]``.
    """
    return direction_ranks(sim, text_to_video, "v2t_any", chunk_size=chunk_size).ranks


# --------------------------------------------------------------------------------------------
# Summary metrics
# --------------------------------------------------------------------------------------------


def _check_recall_ks(recall_ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(recall_ks)
    if not ks or any(
        isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1 for k in ks
    ):
        raise ValueError(
            f"recall_ks: expected a non-empty list of positive integers, got {recall_ks!r}"
        )
    return tuple(int(k) for k in ks)


def rank_metrics(
    ranks: ArrayLike | Sequence[int],
    *,
    recall_ks: Sequence[int] = DEFAULT_RECALL_KS,
    prefix: str = "t2v",
    tied: ArrayLike | Sequence[bool] | None = None,
) -> dict[str, float]:
    """Summarise 1-based ranks into R@K, MdR, MnR, RSum (and ties, N).

    R@K = 100 * mean(rank <= K); MdR = numpy median (mean of the two middle values for even N);
    MnR = mean rank; RSum = R@1 + R@5 + R@10 (always computed, whatever ``recall_ks`` is).

    Shapes:
        ranks: ``[N]``; tied: ``[N]`` bool or None.
    """
    ks = _check_recall_ks(recall_ks)
    r = ranks.detach().cpu().numpy() if isinstance(ranks, torch.Tensor) else np.asarray(ranks)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"ranks: expected a non-empty 1-D array, got shape {r.shape}")
    if r.dtype.kind not in "iu" or int(r.min()) < 1:
        raise ValueError(f"ranks: expected integer ranks >= 1, got dtype {r.dtype}, min {r.min()}")
    p = f"{prefix}/" if prefix else ""
    out: dict[str, float] = {}
    for k in ks:
        out[f"{p}R@{k}"] = 100.0 * float(np.mean(r <= k))
    out[f"{p}MdR"] = float(np.median(r))
    out[f"{p}MnR"] = float(np.mean(r))
    out[f"{p}RSum"] = float(sum(100.0 * float(np.mean(r <= k)) for k in RSUM_KS))
    if tied is not None:
        t = tied.detach().cpu().numpy() if isinstance(tied, torch.Tensor) else np.asarray(tied)
        if t.shape != r.shape:
            raise ValueError(f"tied: expected shape {r.shape} like ranks, got {t.shape}")
        out[f"{p}ties"] = float(np.count_nonzero(t))
    out[f"{p}N"] = float(r.size)
    return out


def evaluate_retrieval(
    sim: ArrayLike,
    text_to_video: ArrayLike | Sequence[int],
    *,
    chunk_size: int | None = None,
    recall_ks: Sequence[int] = DEFAULT_RECALL_KS,
    v2t_sim: ArrayLike | None = None,
) -> RetrievalResult:
    """Ranks for both directions plus the flat metric dict.

    Args:
        sim: text x video similarities used for t2v (and v2t unless ``v2t_sim`` is given).
        text_to_video: ground-truth video index of every caption; every video needs >= 1
            caption.
        chunk_size: query rows per block (None = automatic); never changes the result.
        recall_ks: the K of the R@K keys.
        v2t_sim: an optional separate text x video matrix for v2t, e.g.
            ``tvr.renorm.dual_softmax(sim, direction="v2t")``; same shape as ``sim``.

    Returns:
        A :class:`RetrievalResult`. ``metrics`` holds ``"t2v/…"``, ``"v2t/…"`` (and
        ``"v2t_any/…"`` when some video has several captions) keys ``R@K``, ``MdR``, ``MnR``,
        ``RSum``, ``ties``, ``N``, plus ``"RSum"`` = t2v/RSum + v2t/RSum. Where some query is
        tied, the optimistic figures sit beside them (``"t2v/R@1_optimistic"``, ...,
        ``"RSum_optimistic"``) and a warning is logged per tied direction.

    Shapes:
        sim, v2t_sim: ``[Nt, Nv]``; text_to_video: ``[Nt]``.
    """
    ks = _check_recall_ks(recall_ks)
    s = as_float32_matrix(sim)
    mapping = _as_mapping(text_to_video, *s.shape)
    counts = _captions_per_video(mapping, s.shape[1])
    if v2t_sim is None:
        sv = s
    else:
        sv = as_float32_matrix(v2t_sim, name="v2t_sim")
        if sv.shape != s.shape:
            raise ValueError(f"v2t_sim: expected shape {s.shape} like sim, got {sv.shape}")
    single = bool((counts == 1).all())

    t2v = _t2v(s, mapping, chunk_size)
    v2t = (
        _v2t_single(sv, mapping, chunk_size)
        if single
        else _v2t_msvd(sv, mapping, counts, chunk_size)
    )
    v2t_any = None if single else _v2t_any(sv, mapping, chunk_size)

    metrics: dict[str, float] = {}
    for d in (t2v, v2t, v2t_any):
        if d is not None:
            metrics.update(d.metrics(ks))
    metrics["RSum"] = metrics["t2v/RSum"] + metrics["v2t/RSum"]
    if t2v.num_ties or v2t.num_ties:
        metrics[f"RSum{OPTIMISTIC_SUFFIX}"] = metrics.get(
            f"t2v/RSum{OPTIMISTIC_SUFFIX}", metrics["t2v/RSum"]
        ) + metrics.get(f"v2t/RSum{OPTIMISTIC_SUFFIX}", metrics["v2t/RSum"])
    for d in (t2v, v2t, v2t_any):
        if d is not None and d.num_ties:
            logger.warning("%s", tie_warning(metrics, d.direction))
    logger.info(
        "evaluated t2v on N=%d queries x %d videos; v2t on N=%d (%s)",
        t2v.n,
        s.shape[1],
        v2t.n,
        v2t.protocol,
    )
    return RetrievalResult(t2v=t2v, v2t=v2t, v2t_any=v2t_any, metrics=metrics)


def retrieval_metrics(
    sim: ArrayLike,
    text_to_video: ArrayLike | Sequence[int],
    *,
    chunk_size: int | None = None,
    recall_ks: Sequence[int] = DEFAULT_RECALL_KS,
    v2t_sim: ArrayLike | None = None,
) -> dict[str, float]:
    """The flat metric dict of :func:`evaluate_retrieval` (see there for keys and arguments).

    Shapes:
        sim, v2t_sim: ``[Nt, Nv]``; text_to_video: ``[Nt]``.
    """
    return evaluate_retrieval(
        sim, text_to_video, chunk_size=chunk_size, recall_ks=recall_ks, v2t_sim=v2t_sim
    ).metrics
