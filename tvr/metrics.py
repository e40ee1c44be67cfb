"""Retrieval metrics: tie-safe ranks, R@K, MdR, MnR, multi-caption v2t, DSL and QB-Norm.

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

Test-time re-normalisation (opt-in; results using it must be labelled):

- :func:`dual_softmax` (DSL, CAMoE): a softmax over the *query* axis per gallery item, times the
  score.
- :func:`qb_norm` (QB-Norm with the dynamic inverted softmax): rows whose top-1 item is a
  gallery "hub" of a bank of training queries are rescaled by the bank's column statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

logger = logging.getLogger(__name__)

ArrayLike = np.ndarray | torch.Tensor
Direction = Literal["t2v", "v2t", "v2t_any"]

DEFAULT_RECALL_KS: tuple[int, ...] = (1, 5, 10, 50)
OPTIMISTIC_SUFFIX = "_optimistic"  # metric keys of the ties-favour-the-model figures
RANK_RULE = "1 + #{j != g : S_qj >= S_qg} (ties count against the model)"
RSUM_KS: tuple[int, ...] = (1, 5, 10)

# Protocol labels recorded next to every set of ranks.
PROTOCOL_T2V = "t2v"  # one query per caption against every video
PROTOCOL_V2T_SINGLE = "v2t_single_caption"  # rows of S^T, one caption per video
PROTOCOL_V2T_MSVD = "v2t_msvd_best_caption"  # V x V after collapsing to the best caption
PROTOCOL_V2T_ANY = "v2t_any_caption"  # first correct caption among all captions

# Auto chunking keeps one working block at about this many float32 scores (64 MiB).
_AUTO_CHUNK_ELEMENTS = 1 << 24

QB_NORM_PRESETS: dict[str, dict[str, Any]] = {
    # ioanacroi/qb-norm reference setting
    "reference": {"k": 1, "beta": 20.0, "theta": 1},
    # DiCoSA's released evaluation (t2v and v2t differ in theta)
    "dicosa_t2v": {"k": 1, "beta": 70.0, "theta": 3},
    "dicosa_v2t": {"k": 1, "beta": 70.0, "theta": 5},
}
"""QB-Norm presets (spec §12.2); use as ``qb_norm(sim, bank, **QB_NORM_PRESETS["reference"])``."""


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


def _as_float32_matrix(sim: Any, name: str = "sim") -> np.ndarray:
    """Return ``sim`` as a 2-D float32 numpy array (no copy when already one)."""
    if isinstance(sim, torch.Tensor):
        if sim.is_complex() or not sim.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got dtype {sim.dtype}")
        arr = sim.detach().to(device="cpu", dtype=torch.float32).numpy()
    elif isinstance(sim, np.ndarray):
        if sim.dtype.kind not in "fiu" or sim.dtype == np.bool_:
            raise TypeError(f"{name}: expected a real numeric array, got dtype {sim.dtype}")
        arr = sim.astype(np.float32, copy=False)
    else:
        raise TypeError(f"{name}: expected a numpy array or torch tensor, got {type(sim).__name__}")
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D [queries, gallery] matrix, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty matrix, got shape {arr.shape}")
    return arr


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


def _check_chunk_size(chunk_size: int | None, width: int) -> int:
    """Rows per chunk: ``chunk_size`` or an automatic value for a block ``width`` wide."""
    if chunk_size is None:
        return max(1, _AUTO_CHUNK_ELEMENTS // max(1, width))
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int | np.integer)
        or chunk_size < 1
    ):
        raise ValueError(f"chunk_size: expected a positive integer or None, got {chunk_size!r}")
    return int(chunk_size)


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, size):
        yield lo, min(n, lo + size)


def _check_finite_rows(
    block: np.ndarray, row_offset: int, what: str, transposed: bool = False
) -> None:
    """Raise ValueError naming the first query row of ``block`` holding NaN or inf.

    ``block`` is ``[rows, cols]`` with query rows; ``transposed`` means the rows are columns of
    the original ``sim`` (v2t), which changes how the offending entry is named.
    """
    finite = np.isfinite(block)
    if finite.all():
        return
    r, c = (int(x) for x in np.argwhere(~finite)[0])
    q = row_offset + r
    value = block[r, c]
    entry = f"sim[{c}, {q}]" if transposed else f"sim[{q}, {c}]"
    n_bad = int((~finite).sum())
    raise ValueError(
        f"{what}: query {q} has a non-finite score {value} at {entry}; expected finite "
        f"similarities in every row used for ranking ({n_bad} non-finite in this block)"
    )


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
    rows = _check_chunk_size(chunk_size, width)
    ranks = np.empty(n_queries, dtype=np.int64)
    tied = np.empty(n_queries, dtype=bool)
    optimistic = np.empty(n_queries, dtype=np.int64)
    for lo, hi in _chunks(n_queries, rows):
        block = sim[:, lo:hi].T if transposed else sim[lo:hi]  # [c, Nt] or [c, Nv]
        _check_finite_rows(block, lo, direction, transposed=transposed)
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
    s = _as_float32_matrix(sim)
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


def tied_directions(metrics: Mapping[str, Any]) -> dict[str, int]:
    """``{direction: number of tied queries}`` for every direction of ``metrics`` with ties.

    Reads the ``"<direction>/ties"`` keys of a metric dict (e.g. a ``metrics.json`` entry);
    directions without ties, and dicts from before the key existed, give nothing.
    """
    out: dict[str, int] = {}
    for key, value in metrics.items():
        if not key.endswith("/ties") or "/" in key[: -len("/ties")]:
            continue  # "dsl/t2v/ties" etc. belong to re-normalised figures
        try:
            n = int(float(value))
        except (TypeError, ValueError):
            continue
        if n > 0:
            out[key[: -len("/ties")]] = n
    return out


def tie_warning(metrics: Mapping[str, Any], direction: str, run: str | None = None) -> str:
    """One sentence on a direction's ties: the count and the optimistic R@1 beside the project's.

    Args:
        metrics: a flat metric dict holding ``"<direction>/ties"`` and ``"<direction>/N"``.
        direction: ``"t2v"``, ``"v2t"`` or ``"v2t_any"``.
        run: a run name to open the sentence with.
    """
    n_tied = int(float(metrics.get(f"{direction}/ties", 0)))
    n = metrics.get(f"{direction}/N")
    of = f" of {int(float(n))}" if n is not None else ""
    r1 = metrics.get(f"{direction}/R@1")
    r1_opt = metrics.get(f"{direction}/R@1{OPTIMISTIC_SUFFIX}")
    figures = ""
    if r1 is not None and r1_opt is not None:
        figures = (
            f"; R@1 {float(r1):.1f} with ties against the model, {float(r1_opt):.1f} if ties "
            "favoured it"
        )
    who = f"{run}: " if run else ""
    return (
        f"{who}{direction}: {n_tied}{of} queries tie with another item at their ground-truth "
        f"score (ranks count ties against the model){figures}"
    )


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
            ``dual_softmax(sim, direction="v2t")``; same shape as ``sim``.

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
    s = _as_float32_matrix(sim)
    mapping = _as_mapping(text_to_video, *s.shape)
    counts = _captions_per_video(mapping, s.shape[1])
    if v2t_sim is None:
        sv = s
    else:
        sv = _as_float32_matrix(v2t_sim, name="v2t_sim")
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


# --------------------------------------------------------------------------------------------
# Test-time re-normalisation
# --------------------------------------------------------------------------------------------


def _like(out: np.ndarray, original: Any) -> ArrayLike:
    """Return ``out`` as a tensor on ``original``'s device when ``original`` is a tensor."""
    if isinstance(original, torch.Tensor):
        return torch.from_numpy(out).to(original.device)
    return out


def _check_positive_finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return v


def dual_softmax(
    sim: ArrayLike, temperature: float = 100.0, direction: Literal["t2v", "v2t"] = "t2v"
) -> ArrayLike:
    """Dual softmax (DSL, CAMoE): re-weight every score by a softmax over the *query* axis.

    t2v (queries are texts): ``S'_qv = S_qv * exp(tau S_qv) / sum_q' exp(tau S_q'v)``, a softmax
    over the texts of every video column. v2t (queries are videos) applies the same operation to
    ``S^T``: a softmax over the videos of every text, i.e. along each row of ``S``. The result is
    always returned in the text x video layout of ``sim``, so it can be passed to
    :func:`t2v_ranks` / :func:`v2t_ranks` (or as ``v2t_sim`` to :func:`evaluate_retrieval`).

    ``temperature`` = 100 is the spec default for cosine-scale scores (equivalently 1 on logits
    already multiplied by 100). Computed in float64 with the max subtracted (stable), returned as
    float32, as a tensor on the input's device when ``sim`` is a tensor.

    Shapes:
        sim: ``[Nt, Nv]``; returns ``[Nt, Nv]``.

    Raises:
        ValueError: a non-finite score (naming the row), a bad temperature or direction.
    """
    tau = _check_positive_finite(temperature, "temperature")
    if direction not in ("t2v", "v2t"):
        raise ValueError(f"direction: expected 't2v' or 'v2t', got {direction!r}")
    s = _as_float32_matrix(sim)
    _check_finite_rows(s, 0, "dual_softmax")
    axis = 0 if direction == "t2v" else 1  # the query axis in the text x video layout
    z = tau * s.astype(np.float64)
    z -= z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    weights = e / e.sum(axis=axis, keepdims=True)
    out = (s.astype(np.float64) * weights).astype(np.float32)
    return _like(out, sim)


def _column_logsumexp(bank: np.ndarray, beta: float, chunk_rows: int) -> np.ndarray:
    """``log sum_b exp(beta * bank[b, j])`` per column, in float64, chunked over bank rows."""
    col_max = np.full(bank.shape[1], -np.inf)
    for lo, hi in _chunks(bank.shape[0], chunk_rows):
        col_max = np.maximum(col_max, beta * bank[lo:hi].astype(np.float64).max(axis=0))
    total = np.zeros(bank.shape[1])
    for lo, hi in _chunks(bank.shape[0], chunk_rows):
        total += np.exp(beta * bank[lo:hi].astype(np.float64) - col_max).sum(axis=0)
    return col_max + np.log(total)


def _bank_hubs(bank: np.ndarray, k: int, theta: int, chunk_rows: int) -> np.ndarray:
    """Bool ``[Ng]``: gallery items in the top-k of at least ``theta`` bank queries.

    Ties inside a bank row's top-k go to the lower gallery index (stable order).
    """
    counts = np.zeros(bank.shape[1], dtype=np.int64)
    for lo, hi in _chunks(bank.shape[0], chunk_rows):
        block = bank[lo:hi]
        if k == 1:
            top = np.argmax(block, axis=1)[:, None]
        else:
            top = np.argsort(-block, axis=1, kind="stable")[:, :k]
        counts += np.bincount(top.ravel(), minlength=bank.shape[1])
    return counts >= theta


def qb_norm(
    sim: ArrayLike,
    bank: ArrayLike,
    k: int = 1,
    beta: float = 20.0,
    theta: int = 1,
    *,
    log_space: bool = False,
) -> ArrayLike:
    """Querybank normalisation with the dynamic inverted softmax (QB-Norm, spec §12.2).

    1. ``A`` = gallery items that are in the top-``k`` of at least ``theta`` bank queries.
    2. Every test query whose top-1 item (first index on ties) lies in ``A`` has its whole row
       replaced by ``S'_qj = exp(beta S_qj) / sum_b exp(beta bank[b, j])``.
    3. Other rows are left unchanged (ranking is per row, so mixed scales are harmless).

    Rows are queries: for t2v pass ``sim`` = test texts x test videos and ``bank`` = training
    texts x test videos. For v2t use transposed roles: ``sim`` = ``S^T`` (test videos x test
    texts) and ``bank`` = training videos x test texts; transpose the result back before
    passing it as ``v2t_sim`` to :func:`evaluate_retrieval`. Presets: :data:`QB_NORM_PRESETS`.

    Computed in float64 as ``exp(beta S_qj - logsumexp_b(beta bank[b, j]))`` (no overflow in
    the intermediate sums) and returned as float32. With a large ``beta`` the float32 result can
    underflow to 0 and create artificial ties; ``log_space=True`` returns
    ``beta S_qj - logsumexp_b(...)`` for the normalised rows instead, which ranks identically
    within each row and never under- or overflows.

    Args:
        sim: test queries x gallery scores (cosine scale).
        bank: bank queries x the same gallery.
        k: top-k of each bank query that counts as a hit.
        beta: inverse temperature of the inverted softmax.
        theta: minimum number of bank hits for a gallery item to be normalised.
        log_space: return log-domain scores on the normalised rows.

    Returns:
        float32 ``[Nq, Ng]``, a tensor on ``sim``'s device when ``sim`` is a tensor.

    Shapes:
        sim: ``[Nq, Ng]``; bank: ``[Nb, Ng]``; returns ``[Nq, Ng]``.

    Raises:
        ValueError: shape mismatch, bad hyper-parameters, non-finite scores, or an overflow of
            the normalised scores (use ``log_space=True``).
    """
    s = _as_float32_matrix(sim, name="sim")
    b = _as_float32_matrix(bank, name="bank")
    if b.shape[1] != s.shape[1]:
        raise ValueError(
            f"bank: expected {s.shape[1]} gallery columns like sim {s.shape}, got {b.shape}"
        )
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= s.shape[1]:
        raise ValueError(f"k: expected an integer in 1..{s.shape[1]} (gallery size), got {k!r}")
    if isinstance(theta, bool) or not isinstance(theta, int | np.integer) or theta < 1:
        raise ValueError(f"theta: expected an integer >= 1, got {theta!r}")
    beta_f = _check_positive_finite(beta, "beta")
    _check_finite_rows(s, 0, "qb_norm sim")
    chunk_rows = _check_chunk_size(None, b.shape[1])
    for lo, hi in _chunks(b.shape[0], chunk_rows):
        _check_finite_rows(b[lo:hi], lo, "qb_norm bank")

    hubs = _bank_hubs(b, int(k), int(theta), chunk_rows)  # [Ng]
    lse = _column_logsumexp(b, beta_f, chunk_rows)  # [Ng]
    rows = np.flatnonzero(hubs[np.argmax(s, axis=1)])  # queries whose top-1 is a hub
    out = s.copy()
    z = beta_f * s[rows].astype(np.float64) - lse[None, :]
    with np.errstate(over="ignore"):  # an overflow becomes inf, reported just below
        normalised = (z if log_space else np.exp(z)).astype(np.float32)
    if not np.isfinite(normalised).all():
        raise ValueError(
            f"qb_norm: exp(beta * sim - logsumexp(beta * bank)) overflows float32 with beta="
            f"{beta_f}; pass log_space=True or cosine-scale scores"
        )
    if not log_space and normalised.size and bool((normalised == 0).any()):
        logger.warning(
            "qb_norm: %d normalised scores underflowed to 0 in float32 (beta=%s); ties may "
            "appear, consider log_space=True",
            int((normalised == 0).sum()),
            beta_f,
        )
    out[rows] = normalised
    logger.info(
        "qb_norm: %d of %d gallery items are bank hubs; %d of %d query rows normalised "
        "(k=%d, beta=%s, theta=%d)",
        int(hubs.sum()),
        hubs.size,
        rows.size,
        s.shape[0],
        k,
        beta_f,
        theta,
    )
    return _like(out, sim)
