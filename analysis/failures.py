"""Retrieval failures: queries whose ground truth ranks below ``k``, and on SynthVTT, why.

:func:`failures` lists the failing text queries of a similarity matrix with their top videos.
On SynthVTT, whose meta file records every video's events and every caption's mentioned events
and relevance set, :func:`synthvtt_failures` adds a failure type per query
(:func:`classify_failure`) and false-negative flags.

Classification rule (:func:`classify_failure`). Let ``M`` be the caption's mentioned events in
order (``(colour, shape, action)`` of the ground-truth video's events the caption names), ``E``
the top-1 video's events and ``G`` the ground-truth video's events. "``X`` occurs in ``Y``"
means as an ordered subsequence, gaps allowed (the relevance rule of ``spec/synthvtt.md``).

A. The top-1 video does **not** contain ``M``: the caption itself rules it out. The first
   single edit of ``M`` that makes it occur in ``E`` names the failure:

   1. one mentioned event replaced by an event differing in one attribute: ``colour swap``,
      ``shape swap``, ``direction flip`` (the action turned into its opposite: moves left <->
      moves right, moves up <-> moves down, grows <-> shrinks) or ``action swap`` (any other
      action change); when several fit, that order decides;
   2. two mentioned events exchanged: ``order swap``;
   3. one mentioned event removed (captions of two or more events): ``missing event`` (the top-1
      video lacks an event the caption asks for);
   4. otherwise ``other`` (two or more differences).

B. The top-1 video **does** contain ``M`` (the caption's events cannot tell it apart). If the
   caption names the background and the top-1 video's differs: ``background swap``. Otherwise
   the top-1 video matches the caption, a false negative of the ground truth, and the type says
   how its full event list ``E`` differs from ``G``: one attribute of one event (the four
   substitution types above), two events exchanged (``order swap``), one event more
   (``extra event``: ``G`` occurs in ``E``, one longer), one event fewer (``missing event``), or
   ``other``.

False negatives are read from the meta's relevance sets, not from the type: a query's top-1 (or
any listed top) video other than the ground truth that is in the caption's ``relevant`` list
truly matches it. Held-out SynthVTT captions are unique within their split, so on val/test
these flags stay False and case B only arises with ``background swap``; on train captions
(partial descriptions) they are common.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.ranked_negatives import RankedNegatives, bundle_negatives, ranked_negatives
from tvr.data.synthvtt import (
    EventType,
    MetaCaption,
    MetaVideo,
    SplitMeta,
    caption_matches,
    is_subsequence,
)

logger = logging.getLogger(__name__)

COLOUR_SWAP = "colour swap"
SHAPE_SWAP = "shape swap"
DIRECTION_FLIP = "direction flip"
ACTION_SWAP = "action swap"
ORDER_SWAP = "order swap"
MISSING_EVENT = "missing event"
EXTRA_EVENT = "extra event"
BACKGROUND_SWAP = "background swap"
OTHER = "other"
FAILURE_TYPES: tuple[str, ...] = (
    COLOUR_SWAP,
    SHAPE_SWAP,
    DIRECTION_FLIP,
    ACTION_SWAP,
    ORDER_SWAP,
    MISSING_EVENT,
    EXTRA_EVENT,
    BACKGROUND_SWAP,
    OTHER,
)
OPPOSITE_ACTIONS: frozenset[frozenset[str]] = frozenset(
    {
        frozenset({"moves left", "moves right"}),
        frozenset({"moves up", "moves down"}),
        frozenset({"grows", "shrinks"}),
    }
)
_SUBSTITUTION_ORDER = (COLOUR_SWAP, SHAPE_SWAP, DIRECTION_FLIP, ACTION_SWAP)
_ATTRIBUTES = ("colour", "shape", "action")  # the order of an EventType

FAILURE_COLUMNS: tuple[str, ...] = (
    "query",
    "rank",
    "gt_video",
    "gt_score",
    "top1_video",
    "top1_score",
    "margin",
    "top_videos",
    "top_scores",
)


# ============================================================================ failure table


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < 1:
        raise ValueError(f"{name}={value!r}: expected a positive integer")
    return int(value)


def failures(
    sim: Any,
    text_to_video: Any,
    k: int = 1,
    top: int = 5,
    *,
    query_ids: Sequence[str] | None = None,
    video_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Text queries whose ground-truth video ranks below ``k``, with their top videos.

    Ranks follow the project definition ``1 + #{other videos scoring at least the ground
    truth}`` (:func:`tvr.metrics.t2v_ranks`): ties count against the model, so a video tied
    with the ground truth makes a failure at ``k=1`` (margin 0).

    Args:
        sim: ``[Nt, Nv]`` cosine-scale similarity, texts on rows.
        text_to_video: ``[Nt]`` ground-truth column of each text.
        k: a query fails when its rank is greater than ``k``.
        top: how many of the best videos to list per failing query.
        query_ids: optional ``[Nt]`` ids of the texts (adds column ``query_id``).
        video_ids: optional ``[Nv]`` ids of the videos (adds ``gt_video_id``,
            ``top1_video_id`` and ``top_video_ids``).

    Returns:
        One row per failing query, in query order, with columns ``query`` (row of ``sim``),
        ``rank``, ``gt_video``, ``gt_score``, ``top1_video``, ``top1_score``, ``margin``
        (``gt_score - top1_score``: negative, or 0 when a video ties the ground truth), ``top_videos`` and ``top_scores`` (lists, best
        first, ties by lower column except that the ground truth comes after the columns tied
        with it; it appears there, at position ``rank``, when it ranks within ``top``), plus the
        id columns. An empty frame with those columns when nothing fails.

    Raises:
        ValueError: bad shapes, non-finite scores, out-of-range ground truth, non-positive
            ``k``/``top``, or id lists of the wrong length.
    """
    k = _positive_int(k, "k")
    top = _positive_int(top, "top")
    return failure_rows(ranked_negatives(sim, text_to_video, top), k, top, query_ids=query_ids,
                        video_ids=video_ids)


def failure_rows(
    negatives: RankedNegatives,
    k: int = 1,
    top: int = 5,
    *,
    query_ids: Sequence[str] | None = None,
    video_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """:func:`failures` read from captions' ranked negatives (a bundle stores them, so no
    pass over the similarity is needed); ``negatives`` must keep at least ``top`` per caption
    (or every negative).

    Raises:
        ValueError: non-positive ``k``/``top``, too few negatives kept, or id lists of the
            wrong length.
    """
    k = _positive_int(k, "k")
    top = _positive_int(top, "top")
    n_text, n_video = negatives.num_texts, negatives.num_videos
    if query_ids is not None and len(query_ids) != n_text:
        raise ValueError(f"query_ids: {len(query_ids)} ids for {n_text} rows of sim")
    if video_ids is not None and len(video_ids) != n_video:
        raise ValueError(f"video_ids: {len(video_ids)} ids for {n_video} columns of sim")
    ranks = negatives.ranks
    rows = np.flatnonzero(ranks > k)
    tops, top_scores = negatives.top_videos(rows, top)  # [F, n_top]
    gt = np.asarray(negatives.gt_videos, dtype=np.int64)[rows]
    gt_scores = np.asarray(negatives.gt_scores, dtype=np.float64)[rows]
    table = pd.DataFrame(
        {
            "query": rows.astype(np.int64),
            "rank": ranks[rows].astype(np.int64),
            "gt_video": gt,
            "gt_score": gt_scores,
            "top1_video": tops[:, 0],
            "top1_score": top_scores[:, 0],
            "margin": gt_scores - top_scores[:, 0],
            "top_videos": tops.tolist(),
            "top_scores": top_scores.tolist(),
        },
        columns=list(FAILURE_COLUMNS),
    )
    if query_ids is not None:
        table.insert(1, "query_id", [str(query_ids[i]) for i in rows])
    if video_ids is not None:
        vid = np.asarray([str(v) for v in video_ids], dtype=object)
        table["gt_video_id"] = vid[gt].tolist()
        table["top1_video_id"] = vid[tops[:, 0]].tolist()
        table["top_video_ids"] = vid[tops].tolist()
    logger.debug("%d of %d queries rank below %d", len(rows), n_text, k)
    return table


# ============================================================================ SynthVTT types


def _mentioned(caption: MetaCaption, gt_video: MetaVideo) -> list[EventType]:
    types = gt_video.event_types
    if caption.events[-1] >= len(types):
        raise ValueError(
            f"caption {caption.sen_id}: events {list(caption.events)} are not all indices into "
            f"the ground-truth video {gt_video.video_id!r}'s {len(types)} events"
        )
    return [types[i] for i in caption.events]


def _substitution_type(a: EventType, b: EventType) -> str | None:
    """The failure type when ``a`` and ``b`` differ in exactly one attribute, else None."""
    diff = [name for name, x, y in zip(_ATTRIBUTES, a, b) if x != y]
    if len(diff) != 1:
        return None
    if diff[0] == "colour":
        return COLOUR_SWAP
    if diff[0] == "shape":
        return SHAPE_SWAP
    return DIRECTION_FLIP if frozenset({a[2], b[2]}) in OPPOSITE_ACTIONS else ACTION_SWAP


def _first_by_priority(found: set[str]) -> str | None:
    for kind in _SUBSTITUTION_ORDER:
        if kind in found:
            return kind
    return None


def _caption_edit(mentioned: list[EventType], events: list[EventType]) -> str:
    """Case A: the single edit of the mentioned events that makes them occur in ``events``."""
    found: set[str] = set()
    for i, want in enumerate(mentioned):
        for p, have in enumerate(events):
            kind = _substitution_type(want, have)
            if kind and is_subsequence(mentioned[:i], events[:p]) and is_subsequence(
                mentioned[i + 1 :], events[p + 1 :]
            ):
                found.add(kind)
    kind = _first_by_priority(found)
    if kind:
        return kind
    n = len(mentioned)
    for i in range(n):
        for j in range(i + 1, n):
            if mentioned[i] == mentioned[j]:
                continue
            swapped = list(mentioned)
            swapped[i], swapped[j] = swapped[j], swapped[i]
            if is_subsequence(swapped, events):
                return ORDER_SWAP
    if n >= 2 and any(is_subsequence(mentioned[:i] + mentioned[i + 1 :], events) for i in range(n)):
        return MISSING_EVENT
    return OTHER


def _video_edit(gt: list[EventType], top: list[EventType]) -> str:
    """Case B: how the top-1 video's full event list differs from the ground truth's."""
    if len(top) == len(gt):
        diff = [i for i, (a, b) in enumerate(zip(gt, top)) if a != b]
        if len(diff) == 1:
            return _substitution_type(gt[diff[0]], top[diff[0]]) or OTHER
        if len(diff) == 2:
            i, j = diff
            if gt[i] == top[j] and gt[j] == top[i]:
                return ORDER_SWAP
        return OTHER
    if len(top) == len(gt) + 1 and is_subsequence(gt, top):
        return EXTRA_EVENT
    if len(top) == len(gt) - 1 and is_subsequence(top, gt):
        return MISSING_EVENT
    return OTHER


def classify_failure(caption: MetaCaption, gt_video: MetaVideo, top_video: MetaVideo) -> str:
    """Why a SynthVTT caption's top-1 video is not its ground truth (see the module docstring).

    Args:
        caption: the caption's ground truth (``events``: indices into the ground-truth video's
            events; ``background``: whether the caption names it).
        gt_video: the ground-truth video.
        top_video: the top-1 video.

    Returns:
        One of :data:`FAILURE_TYPES`.

    Raises:
        ValueError: the caption's event indices do not fit ``gt_video``.
    """
    return _classify_events(tuple(_mentioned(caption, gt_video)), bool(caption.background),
                            tuple(gt_video.event_types), gt_video.background,
                            tuple(top_video.event_types), top_video.background)


@functools.lru_cache(maxsize=1 << 16)
def _classify_events(mentioned: tuple[EventType, ...], names_background: bool,
                     gt_events: tuple[EventType, ...], gt_background: str,
                     top_events: tuple[EventType, ...], top_background: str) -> str:
    """:func:`classify_failure` on what it depends on, memoised: the failures of a split
    repeat few combinations (46,294 failing captions of MSR-VTT's full shape: 8,095 distinct
    pairs of mentioned and top-1 events)."""
    if not caption_matches(mentioned, top_events):
        return _caption_edit(list(mentioned), list(top_events))
    if names_background and top_background != gt_background:
        return BACKGROUND_SWAP
    return _video_edit(list(gt_events), list(top_events))


def synthvtt_failures(
    sim: Any,
    text_to_video: Any,
    split: SplitMeta,
    k: int = 1,
    top: int = 5,
) -> pd.DataFrame:
    """:func:`failures` plus the SynthVTT failure type and false-negative flags.

    Args:
        sim, text_to_video, k, top: as :func:`failures`.
        split: the meta aligned with the rows and columns of ``sim``
            (:func:`tvr.data.synthvtt.read_split_meta`); every caption row needs its entry.

    Returns:
        The failure table with ``query_id`` (the caption's ``sen_id`` as a string), the video
        id columns, and ``failure_type`` (one of :data:`FAILURE_TYPES`), ``false_negative``
        (the top-1 video is in the caption's relevance set) and ``false_negatives_top`` (the
        listed top videos other than the ground truth that are in the relevance set).

    Raises:
        ValueError: ``split`` does not fit ``sim``, a caption row without a meta entry, or a
            caption whose video is not the row's ground truth.
    """
    arr = np.asarray(sim)
    if arr.ndim != 2:
        raise ValueError(f"split meta of {len(split.captions)} captions x {len(split.videos)} "
                         f"videos does not fit sim of shape {arr.shape}")
    top = _positive_int(top, "top")
    _check_split(split, arr.shape)
    return typed_failures(ranked_negatives(arr, text_to_video, top), split, k, top)


def _check_split(split: SplitMeta, shape: tuple[int, int]) -> list[MetaCaption]:
    """The split's captions, checked to fit an ``[Nt, Nv]`` similarity of ``shape``."""
    if tuple(shape) != (len(split.captions), len(split.videos)):
        raise ValueError(
            f"split meta of {len(split.captions)} captions x {len(split.videos)} videos does "
            f"not fit sim of shape {tuple(shape)}"
        )
    missing = [q for q, c in enumerate(split.captions) if c is None]
    if missing:
        raise ValueError(f"caption rows {missing[:5]} have no entry in the SynthVTT meta")
    return [c for c in split.captions if c is not None]


def typed_failures(
    negatives: RankedNegatives, split: SplitMeta, k: int = 1, top: int = 5
) -> pd.DataFrame:
    """:func:`synthvtt_failures` read from captions' ranked negatives
    (:class:`analysis.ranked_negatives.RankedNegatives`) instead of the similarity.

    Raises:
        ValueError: as :func:`synthvtt_failures`.
    """
    captions = _check_split(split, (negatives.num_texts, negatives.num_videos))
    video_ids = [v.video_id for v in split.videos]
    table = failure_rows(negatives, k, top, query_ids=[str(c.sen_id) for c in captions],
                         video_ids=video_ids)
    # classify_failure row by row, its per-video parts read once (46,294 failing rows at
    # MSR-VTT's full shape: the loop's own work was most of the table's time)
    events = [v.event_types for v in split.videos]
    backgrounds = [v.background for v in split.videos]
    types, flags, fn_top = [], [], []
    for q, gt, top1, top_ids in zip(
        table["query"].tolist(), table["gt_video"].tolist(), table["top1_video"].tolist(),
        table["top_video_ids"]
    ):
        cap = captions[q]
        gt_id = video_ids[gt]
        if cap.video_id != gt_id:
            raise ValueError(
                f"caption {cap.sen_id} (row {q}) describes {cap.video_id!r} but its row's ground "
                f"truth is {gt_id!r}: the split meta and text_to_video disagree"
            )
        gt_events = events[gt]
        if cap.events[-1] >= len(gt_events):
            _mentioned(cap, split.videos[gt])  # raises, naming the caption and the video
        types.append(_classify_events(tuple([gt_events[i] for i in cap.events]),
                                      bool(cap.background), gt_events, backgrounds[gt],
                                      events[top1], backgrounds[top1]))
        relevant = cap.relevant
        flags.append(video_ids[top1] in relevant)
        fn_top.append([v for v in top_ids if v != gt_id and v in relevant])
    table["failure_type"] = pd.Series(types, index=table.index, dtype=object)
    table["false_negative"] = pd.Series(flags, index=table.index, dtype=bool)
    table["false_negatives_top"] = pd.Series(fn_top, index=table.index, dtype=object)
    return table


def failures_at(table: pd.DataFrame, k: int) -> pd.DataFrame:
    """The rows of a failure table (any of this module's, built at a threshold below ``k``)
    that still fail at threshold ``k``: the table :func:`bundle_failures` and the other
    builders return at ``k``, without ranking or typing a query again (a row's top list and
    failure type do not depend on the threshold).

    Raises:
        ValueError: a non-positive ``k``.
    """
    k = _positive_int(k, "k")
    out = table[table["rank"].to_numpy() > k].reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out


def failure_type_counts(table: pd.DataFrame) -> pd.Series:
    """Count failures per type, every type listed (zeros included), in :data:`FAILURE_TYPES`
    order.

    Raises:
        ValueError: ``table`` has no ``failure_type`` column (use :func:`synthvtt_failures`).
    """
    if "failure_type" not in table.columns:
        raise ValueError("table has no 'failure_type' column; build it with synthvtt_failures")
    counts = table["failure_type"].value_counts()
    unknown = set(counts.index) - set(FAILURE_TYPES)
    if unknown:
        raise ValueError(f"failure_type holds unknown types {sorted(unknown)}")
    return pd.Series(
        [int(counts.get(t, 0)) for t in FAILURE_TYPES], index=list(FAILURE_TYPES), name="count"
    )


# ============================================================================ bundles


def bundle_failures(bundle: Any, k: int = 1, top: int = 5,
                    negatives: RankedNegatives | None = None) -> pd.DataFrame:
    """The failure table of an analysis bundle's text queries, typed on SynthVTT.

    Uses :func:`typed_failures` when the bundle is a SynthVTT split whose meta file is found
    (``bundle.data_root``; read once per bundle), else :func:`failure_rows` with the bundle's
    ids. Both read the captions' ranked negatives: ``negatives`` when given, else
    :func:`analysis.ranked_negatives.bundle_negatives` (stored in the bundle, or ranked from
    its similarity).

    Args:
        bundle: an :class:`analysis.bundle.Bundle`.
        k, top: as :func:`failures`.
        negatives: the bundle's ranked negatives when the caller holds them.

    Returns:
        The failure table plus a ``caption`` column (the query text) after ``query``; on
        SynthVTT also ``failure_type``, ``false_negative`` and ``false_negatives_top``.
        ``table.attrs["typed"]`` tells whether failure types are there and
        ``table.attrs["note"]`` why not when they are not.
    """
    negatives = bundle_negatives(bundle) if negatives is None else negatives
    note = ""
    table = None
    if bundle.dataset == "synthvtt":
        root = bundle.data_root
        if root is None:
            note = "SynthVTT root not found, so failures are not typed"
        else:
            try:
                table = typed_failures(negatives, bundle.synthvtt_meta(), k, top)
            except (FileNotFoundError, ValueError) as exc:
                note = f"failures not typed: {exc}"
                logger.warning("%s: %s", bundle.path, note)
    else:
        note = "failure types exist for SynthVTT only"
    typed = table is not None
    if table is None:
        table = failure_rows(negatives, k, top,
                             query_ids=[str(i) for i in range(bundle.num_texts)],
                             video_ids=bundle.video_ids)
    captions = np.asarray(bundle.captions, dtype=object)
    table.insert(1, "caption", captions[table["query"].to_numpy()].tolist())
    table.attrs["typed"] = typed
    table.attrs["note"] = note
    return table
