"""The points of a bundle's 2-D embedding map as flat per-point arrays, and selections on them.

A bundle's map of one method (:class:`analysis.bundle.Projections`) holds four kinds of
points: word tokens, frame tokens, pooled captions and pooled videos. :func:`map_points` lays
them out as one table (kind, owning caption and video, token position, coordinates) so a chart
draws them as a single trace with one global id per point; :func:`selected_items` turns the ids
of a lasso selection into the captions and videos they belong to, and :func:`highlight` marks
every point of those captions and videos (so a selection on one run's map lights up the same
items on another run's map).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("words", "frames", "texts", "videos")  # order of the point blocks
WORDS, FRAMES, TEXTS, VIDEOS = range(4)


@dataclass(frozen=True)
class MapPoints:
    """All points of one map, blocks in :data:`KINDS` order; ids are row positions.

    Attributes:
        coords: ``[P, 2]`` float32 map coordinates.
        kind: ``[P]`` int64 index into :data:`KINDS`.
        item: ``[P]`` int64 the caption (words, texts) or the video (frames, videos).
        position: ``[P]`` int64 token position (words) or frame position (frames), -1 for
            pooled points.
        caption: ``[P]`` int64 the caption of word and text points, -1 otherwise.
        video: ``[P]`` int64 the video of frame and video points, and the ground-truth video
            of word and text points.
    """

    coords: np.ndarray
    kind: np.ndarray
    item: np.ndarray
    position: np.ndarray
    caption: np.ndarray
    video: np.ndarray

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def block(self, kind: str) -> np.ndarray:
        """The ids of the points of ``kind`` (one of :data:`KINDS`)."""
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r}: expected one of {KINDS}")
        return np.flatnonzero(self.kind == KINDS.index(kind))


def map_points(projections: Any, method: str, text_to_video: Any) -> MapPoints:
    """Flatten the map of ``method`` into :class:`MapPoints`.

    Args:
        projections: a bundle's :class:`analysis.bundle.Projections`.
        method: one of ``projections.methods``.
        text_to_video: ``[Nt]`` ground-truth video of each caption.

    Raises:
        KeyError: no map of ``method``.
        ValueError: the id arrays do not match the coordinates.

    Shapes:
        -> ``P = Nw + Nf + Nt + Nv`` points.
    """
    t2v = np.asarray(text_to_video, dtype=np.int64)
    coords = {k: np.asarray(projections.get(method, k), dtype=np.float32) for k in KINDS}
    word_ids = np.asarray(projections.word_ids, dtype=np.int64).reshape(-1, 2)
    frame_ids = np.asarray(projections.frame_ids, dtype=np.int64).reshape(-1, 2)
    expected = {"words": len(word_ids), "frames": len(frame_ids), "texts": len(t2v)}
    for k, n in expected.items():
        if coords[k].shape != (n, 2):
            raise ValueError(
                f"projection {method!r}/{k}: expected {n} points of 2 coordinates, got "
                f"{coords[k].shape}"
            )
    if word_ids.size and ((word_ids[:, 0] < 0) | (word_ids[:, 0] >= len(t2v))).any():
        raise ValueError(f"word_ids: caption indices must lie in [0, {len(t2v)})")
    n_v = coords["videos"].shape[0]
    if frame_ids.size and ((frame_ids[:, 0] < 0) | (frame_ids[:, 0] >= n_v)).any():
        raise ValueError(f"frame_ids: video indices must lie in [0, {n_v})")
    texts = np.arange(len(t2v), dtype=np.int64)
    videos = np.arange(n_v, dtype=np.int64)
    item = np.concatenate([word_ids[:, 0], frame_ids[:, 0], texts, videos])
    position = np.concatenate([word_ids[:, 1], frame_ids[:, 1],
                               np.full(len(texts) + n_v, -1, dtype=np.int64)])
    caption = np.concatenate([word_ids[:, 0], np.full(len(frame_ids), -1, dtype=np.int64), texts,
                              np.full(n_v, -1, dtype=np.int64)])
    video = np.concatenate([t2v[word_ids[:, 0]], frame_ids[:, 0], t2v, videos])
    kind = np.repeat(np.arange(4, dtype=np.int64),
                     [len(word_ids), len(frame_ids), len(texts), n_v])
    return MapPoints(
        coords=np.concatenate([coords[k] for k in KINDS]).astype(np.float32),
        kind=kind,
        item=item.astype(np.int64),
        position=position.astype(np.int64),
        caption=caption.astype(np.int64),
        video=video.astype(np.int64),
    )


def selected_items(points: MapPoints, ids: Iterable[Any]) -> tuple[list[int], list[int]]:
    """The captions and videos a set of selected point ids belongs to.

    Word and text points select their caption; frame and video points their video. Ids
    outside ``0..P-1`` are ignored.

    Returns:
        ``(captions, videos)``, each sorted and unique.
    """
    n = len(points)
    idx = np.asarray(sorted({int(i) for i in ids if 0 <= int(i) < n}), dtype=np.int64)
    if idx.size == 0:
        return [], []
    kind = points.kind[idx]
    is_text = (kind == WORDS) | (kind == TEXTS)
    captions = np.unique(points.caption[idx[is_text]])
    videos = np.unique(points.item[idx[~is_text]])
    return captions.tolist(), videos.tolist()


def highlight(points: MapPoints, captions: Sequence[int], videos: Sequence[int]) -> np.ndarray:
    """Which points belong to the given captions (word, text points) or videos (frame, video
    points).

    Shapes:
        -> ``[P]`` bool.
    """
    wanted = np.asarray(captions, dtype=np.int64)
    on_caption = (points.caption >= 0) & np.isin(points.caption, wanted)
    is_video_side = (points.kind == FRAMES) | (points.kind == VIDEOS)
    on_video = is_video_side & np.isin(points.item, np.asarray(videos, dtype=np.int64))
    return on_caption | on_video
