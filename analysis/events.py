"""SynthVTT events on a video's sampled frames, and how much attention falls on them.

SynthVTT's meta file (``spec/synthvtt.md``) records every video's events as frame ranges
``[start_frame, end_frame)`` at the generator's ``fps``, and every caption's mentioned events
as indices into its video's event list. A bundle samples ``T`` frames per video and records
each sampled frame's presentation time in seconds (NaN on padding). Here the two meet:

- :func:`event_spans`: each event's time span in seconds (to shade it on a time axis);
- :func:`frame_event_ids` / :func:`frame_event_table`: which event each sampled frame shows
  (``-1`` for gaps between events and for padding);
- :func:`caption_alignment` / :func:`alignment_table`: the attention-event alignment (the
  share of a caption's attention mass on the frames of the events it mentions) with its
  chance level, built on :func:`analysis.attention.event_alignment`.

A sampled frame at time ``t`` is source frame ``round(t * fps)`` (SynthVTT frames have
timestamps ``i / fps``; rounding absorbs the float error of ``pts * time_base``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.attention import event_alignment
from tvr.data.synthvtt import MetaCaption, MetaEvent, MetaVideo

logger = logging.getLogger(__name__)

NO_EVENT = -1  # event id of a gap frame or a padded frame


@dataclass(frozen=True)
class EventSpan:
    """One event of a video on the time axis.

    Attributes:
        index: the event's position in the video's event list.
        label: ``"red circle moves left"``.
        start: first second of the event (``start_frame / fps``).
        end: end of the event in seconds, exclusive (``end_frame / fps``).
    """

    index: int
    label: str
    start: float
    end: float


def _check_fps(fps: Any) -> float:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise ValueError(f"fps={fps!r}: expected a positive number") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"fps={fps!r}: expected a positive number")
    return value


def event_spans(events: Sequence[MetaEvent], fps: float) -> list[EventSpan]:
    """The time span of every event of a video.

    Args:
        events: the video's events (:attr:`tvr.data.synthvtt.MetaVideo.events`).
        fps: the generator's frame rate (``params.fps``).

    Returns:
        One :class:`EventSpan` per event, in the video's order.
    """
    rate = _check_fps(fps)
    return [
        EventSpan(i, ev.label, ev.start_frame / rate, ev.end_frame / rate)
        for i, ev in enumerate(events)
    ]


def frame_event_ids(timestamps: Any, events: Sequence[MetaEvent], fps: float) -> np.ndarray:
    """Which event each sampled frame of one video shows.

    Args:
        timestamps: ``[T]`` seconds of the sampled frames, NaN on padding.
        events: the video's events (see :func:`event_spans`).
        fps: the generator's frame rate.

    Returns:
        ``[T]`` int64 event index, :data:`NO_EVENT` (-1) for a frame between events and for
        padding.

    Shapes:
        timestamps ``[T]`` -> ``[T]``.
    """
    t = np.asarray(timestamps, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"timestamps: expected [T] seconds of one video, got shape {t.shape}")
    rate = _check_fps(fps)
    out = np.full(t.shape, NO_EVENT, dtype=np.int64)
    real = np.isfinite(t)
    frame = np.full(t.shape, -1, dtype=np.int64)
    frame[real] = np.rint(t[real] * rate).astype(np.int64)
    for i, ev in enumerate(events):
        out[real & (frame >= ev.start_frame) & (frame < ev.end_frame)] = i
    return out


def frame_event_table(frame_timestamps: Any, videos: Sequence[MetaVideo], fps: float) -> np.ndarray:
    """:func:`frame_event_ids` of every video of a split.

    Args:
        frame_timestamps: ``[Nv, T]`` seconds (a bundle's ``frame_timestamps``).
        videos: ``[Nv]`` the videos of the rows (e.g. a :class:`tvr.data.synthvtt.SplitMeta`'s).
        fps: the generator's frame rate.

    Shapes:
        frame_timestamps ``[Nv, T]`` -> ``[Nv, T]`` int64.
    """
    t = np.asarray(frame_timestamps, dtype=np.float64)
    if t.ndim != 2:
        raise ValueError(f"frame_timestamps: expected [Nv, T], got shape {t.shape}")
    if len(videos) != t.shape[0]:
        raise ValueError(
            f"videos: expected {t.shape[0]} entries (one per row of frame_timestamps), "
            f"got {len(videos)}"
        )
    out = np.empty(t.shape, dtype=np.int64)
    for v, video in enumerate(videos):
        out[v] = frame_event_ids(t[v], video.events, fps)
    return out


def event_runs(frame_events: Any) -> list[tuple[int, int, int]]:
    """Maximal runs of consecutive frames showing the same event.

    Args:
        frame_events: ``[T]`` event id per frame (:func:`frame_event_ids`), -1 for none.

    Returns:
        ``(event, first, last)`` per run, positions inclusive, in frame order; frames
        without an event form no run.
    """
    ev = np.asarray(frame_events)
    if ev.ndim != 1:
        raise ValueError(f"frame_events: expected [T], got shape {ev.shape}")
    runs: list[tuple[int, int, int]] = []
    start = 0
    for i in range(1, ev.shape[0] + 1):
        if i == ev.shape[0] or ev[i] != ev[start]:
            if ev[start] != NO_EVENT:
                runs.append((int(ev[start]), start, i - 1))
            start = i
    return runs


@dataclass(frozen=True)
class Alignment:
    """Attention-event alignment of one caption.

    Attributes:
        share: share of the attention mass on frames of the mentioned events, in ``[0, 1]``.
        chance: what uniform attention over the same valid frames would score.
        mentioned: the mentioned event indices.
    """

    share: float
    chance: float
    mentioned: tuple[int, ...]

    @property
    def lift(self) -> float:
        """``share - chance``: positive when attention favours the mentioned events."""
        return self.share - self.chance


def caption_alignment(
    weights: Any, frame_events: Any, mentioned: Sequence[int]
) -> Alignment:
    """Attention-event alignment of one caption over its video's valid frames.

    Pass the video's valid (non-padded) frames only: the chance level is uniform attention
    over the frames given.

    Args:
        weights: ``[T']`` non-negative attention mass per valid sampled frame (e.g. part of a
            row of the bundle's ``text_frame_weights``, or GAT attention received per frame).
        frame_events: ``[T']`` event id per frame from :func:`frame_event_ids`.
        mentioned: the caption's mentioned event indices (non-empty).

    Shapes:
        weights ``[T']``, frame_events ``[T']`` -> :class:`Alignment`.
    """
    w = np.asarray(weights, dtype=np.float64)
    ev = np.asarray(frame_events)
    share = event_alignment(w, ev, mentioned)
    chance = event_alignment(np.ones_like(w), ev, mentioned)
    return Alignment(share, chance, tuple(sorted({int(e) for e in mentioned})))


def alignment_table(
    weights: Any,
    frame_events: Any,
    video_mask: Any,
    text_to_video: Any,
    captions: Sequence[MetaCaption | None],
) -> pd.DataFrame:
    """Attention-event alignment of every caption of a split.

    Args:
        weights: ``[Nt, T]`` each caption's attention mass over its own video's frames (a
            bundle's ``text_frame_weights``).
        frame_events: ``[Nv, T]`` from :func:`frame_event_table`.
        video_mask: ``[Nv, T]`` bool, True on real frames.
        text_to_video: ``[Nt]`` each caption's video.
        captions: ``[Nt]`` the captions' ground truth (``events``: mentioned indices), None
            for a caption without meta (its row gets NaN).

    Returns:
        One row per caption: ``caption``, ``video``, ``share``, ``chance``, ``lift``
        (``share - chance``), ``n_mentioned``.

    Shapes:
        weights ``[Nt, T]``, frame_events ``[Nv, T]``, video_mask ``[Nv, T]``,
        text_to_video ``[Nt]`` -> DataFrame of ``Nt`` rows.
    """
    w = np.asarray(weights, dtype=np.float64)
    ev = np.asarray(frame_events)
    mask = np.asarray(video_mask).astype(bool)
    t2v = np.asarray(text_to_video)
    if w.ndim != 2:
        raise ValueError(f"weights: expected [Nt, T], got shape {w.shape}")
    if ev.ndim != 2 or ev.shape[1] != w.shape[1] or mask.shape != ev.shape:
        raise ValueError(
            f"frame_events {ev.shape} and video_mask {mask.shape} must both be [Nv, "
            f"{w.shape[1]}] to match weights {w.shape}"
        )
    if t2v.shape != (w.shape[0],) or not np.issubdtype(t2v.dtype, np.integer):
        raise ValueError(
            f"text_to_video: expected {w.shape[0]} integer video indices, got {t2v.shape} "
            f"{t2v.dtype}"
        )
    if ((t2v < 0) | (t2v >= ev.shape[0])).any():
        raise ValueError(f"text_to_video: indices must lie in [0, {ev.shape[0]})")
    if len(captions) != w.shape[0]:
        raise ValueError(
            f"captions: expected {w.shape[0]} entries (one per caption), got {len(captions)}"
        )
    n_text = w.shape[0]
    # the mentioned events of each caption as a bit set; rows without meta stay empty
    has_meta = np.array([c is not None for c in captions], dtype=bool)
    mentioned = [sorted({int(e) for e in c.events}) if c is not None else [] for c in captions]
    n_mentioned = np.array([len(m) for m in mentioned], dtype=np.int64)
    valid = mask[t2v]  # [Nt, T] each caption's video's real frames
    w_valid = np.where(valid, w, 0.0)
    total = w_valid.sum(axis=1)  # NaN stays NaN: such a row is left out
    use = has_meta & valid.any(axis=1) & (total > 0)  # as caption_alignment would be called
    bad = use & ~(np.isfinite(w_valid).all(axis=1) & (w_valid >= 0).all(axis=1))
    if bad.any():
        raise ValueError(
            f"weights[{int(np.flatnonzero(bad)[0])}]: expected finite non-negative attention "
            "mass (apply a softmax to raw similarities first)")
    empty = use & (n_mentioned == 0)
    if empty.any():
        raise ValueError(f"captions[{int(np.flatnonzero(empty)[0])}] mentions no event; a "
                         "caption mentions at least one event")
    ev_rows = ev[t2v]  # [Nt, T]
    ids = [e for m in mentioned for e in m]
    if all(0 <= e < 62 for e in ids) and int(ev.max(initial=-1)) < 62:  # bit sets: one pass
        bits = np.array([sum(1 << e for e in m) for m in mentioned], dtype=np.int64)
        on = ((bits[:, None] >> np.clip(ev_rows, 0, None)) & 1).astype(bool) & (ev_rows >= 0)
    else:  # many events per video: one row at a time
        on = np.zeros(ev_rows.shape, dtype=bool)
        for q in np.flatnonzero(use):
            on[q] = np.isin(ev_rows[q], mentioned[q])
    on &= valid
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(use, (w_valid * on).sum(axis=1) / total, np.nan)
        chance = np.where(use, on.sum(axis=1) / valid.sum(axis=1), np.nan)
    return pd.DataFrame({
        "caption": np.arange(n_text, dtype=np.int64),
        "video": t2v.astype(np.int64),
        "share": share, "chance": chance, "lift": share - chance,
        "n_mentioned": np.where(use, n_mentioned, 0),
    })
