"""Frame strips and clips from a bundle: thumbnails only, videos are never decoded here.

- :func:`frame_strip` draws a video's sampled frames (the bundle's JPEG strip) with an optional
  title, score and ground-truth highlight.
- :func:`frame_images` returns the frames as ``[n, S, S, 3]`` uint8 arrays (for figure axes).
- :func:`video_file` resolves a bundle video's file inside the data root (for the player).
- :func:`clip_player` plays a clip in the frame-exact player (:mod:`app.components.clip_player`),
  paused at one of its sampled frames when picked (:func:`played_frame`).
- :func:`ranked_list` draws a top-k list as a column of strips.

Every file is checked with :meth:`app.state.AppRoots.check` before it is read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from analysis.bundle import Bundle, BundleError
from analysis.labels import frame_label, video_label
from app.components.clip_player import ClipPlayerError, frame_player
from app.state import AppRoots, PathOutsideRootsError

logger = logging.getLogger(__name__)

GT_MARK = "✓ ground truth"


def thumbnail_file(roots: AppRoots, bundle: Bundle, video: int) -> Path:
    """The checked path of video ``video``'s JPEG strip."""
    return roots.check(bundle.thumbnail_path(int(video)))


def frame_images(roots: AppRoots, bundle: Bundle, video: int) -> np.ndarray:
    """The sampled frames of a video as uint8 ``[n, S, S, 3]``."""
    thumbnail_file(roots, bundle, video)
    return bundle.thumbnail_frames(int(video))


def frame_strip(
    roots: AppRoots,
    bundle: Bundle,
    video: int,
    *,
    title: str | None = None,
    gt: bool = False,
    container: Any = None,
) -> None:
    """Draw video ``video``'s frame strip; a ground-truth strip sits in a bordered box with a
    mark."""
    where = container if container is not None else st
    box = where.container(border=gt)
    label = title if title is not None else video_label(bundle.video_ids[int(video)])
    if gt:
        label = f"{label} — {GT_MARK}"
    try:
        path = thumbnail_file(roots, bundle, video)
    except (BundleError, PathOutsideRootsError, IndexError) as exc:
        box.caption(f"{label}: no thumbnail ({exc})")
        return
    # "content": the strip's own width, shrunk to the column when wider (an int width would
    # overflow narrow columns, e.g. the live query's side-by-side results)
    box.image(str(path), caption=label, width="content")


def ranked_list(
    roots: AppRoots,
    bundle: Bundle,
    videos: Sequence[int],
    scores: Sequence[float],
    *,
    gt_video: int | None = None,
    container: Any = None,
) -> None:
    """Draw a ranked list (best first) of frame strips with rank and score; the ground truth
    highlighted."""
    where = container if container is not None else st
    for r, (v, s) in enumerate(zip(videos, scores, strict=True), start=1):
        frame_strip(
            roots, bundle, int(v), container=where, gt=gt_video is not None and int(v) == gt_video,
            title=f"#{r} · {bundle.video_ids[int(v)]} · score {float(s):.3f}",
        )


def video_file(roots: AppRoots, bundle: Bundle, video: int, data_root: Path | None) -> Path | None:
    """The video file of bundle video ``video`` inside the data root, None when not found.

    Raises:
        app.state.PathOutsideRootsError: the recorded path points outside the roots.
    """
    rel = Path(bundle.video_paths[int(video)])
    if rel.is_absolute():
        path = rel
    elif data_root is not None:
        path = data_root / rel
    else:
        return None
    checked = roots.check(path)
    return checked if checked.is_file() else None


CLIP_WIDTH = 320  # px


def played_frame(key: str) -> int | None:
    """The frame column picked under the clip player drawn with ``key`` (index among the
    video's sampled frames, as on the heatmaps), None when none is picked; read before the
    player is drawn so a heatmap above it can mark that column."""
    value = st.session_state.get(key)
    return None if value is None else int(value)


def clip_player(roots: AppRoots, bundle: Bundle, video: int, data_root: Path | None, *,
                container: Any = None, frame_times: bool = True,
                key: str | None = None) -> bool:
    """Play video ``video``'s clip (its window of the file, looped, muted) from the data root
    in the frame-exact player (:func:`app.components.clip_player.frame_player`), with the
    times of its sampled frames, labelled as on the heatmaps' frame columns (``f3 @ 1.25s``).
    With ``key``, a "play from frame" control lists those columns: picking one seeks the player
    to that frame's exact time and pauses there (play goes on from it), and shows the sampled
    frame as the model saw it; :func:`played_frame` reads the pick. Says so when the file is
    not there or is not a video the browser plays. Returns whether a player was drawn.
    """
    where = container if container is not None else st
    try:
        clip = video_file(roots, bundle, video, data_root)
    except PathOutsideRootsError as exc:
        where.caption(f"No clip: {exc}")
        return False
    if clip is None:
        where.caption(f"No clip of {video_label(bundle.video_ids[int(video)])}: the video file "
                      "is not under the data root (thumbnails only).")
        return False
    start, end = bundle.video_windows[int(video)]
    times = np.asarray(bundle.frame_timestamps[int(video)], dtype=np.float64)
    valid = np.asarray(bundle.video_mask[int(video)], dtype=bool)[: len(times)]
    times = times[valid]
    labels = [frame_label(j, t) for j, t in enumerate(times)]
    picked = None
    control = key is not None and bool(labels) and bool(np.isfinite(times).all())
    if control:
        picked = where.segmented_control(
            "Play from frame", list(range(len(labels))), format_func=lambda j: labels[j],
            key=key, help="The heatmap's frame columns: show the clip at one of them")
    at = float(start or 0) if picked is None else float(times[int(picked)])
    name = video_label(bundle.video_ids[int(video)])
    try:
        frame_player(clip, at, start=start, end=end, width=CLIP_WIDTH,
                     label=name if picked is None else f"{name}, {labels[int(picked)]}",
                     key=f"{key or 'clip'}_player_{int(video)}", container=where)
    except ClipPlayerError as exc:
        where.caption(f"No clip of {name}: {exc} (thumbnails only).")
        return False
    if picked is not None:
        j = int(picked)
        where.caption(f"Paused at {labels[j]}, the exact time of the sampled frame (press play "
                      "to play on from there); the sampled frame as the model saw it:")
        try:
            frames = frame_images(roots, bundle, video)
        except (BundleError, PathOutsideRootsError, IndexError) as exc:
            where.caption(f"(no thumbnail: {exc})")
        else:
            if j < len(frames):
                where.image(frames[j], caption=labels[j], width=160)
    elif frame_times and labels and not control:
        where.caption("Sampled frames (the heatmap's columns): " + ", ".join(labels))
    return True


def clip_row(roots: AppRoots, bundle: Bundle, clips: Sequence[tuple[str, int]],
             data_root: Path | None, *, container: Any = None, key: str | None = None) -> None:
    """Players side by side for ``clips`` (``(title, video)`` pairs, a video once even when
    listed twice; see :func:`clip_player`; with ``key``, each player's "play from frame"
    control is keyed ``{key}_{video}``)."""
    where = container if container is not None else st
    seen: set[int] = set()
    unique = [(t, int(v)) for t, v in clips if not (int(v) in seen or seen.add(int(v)))]
    if not unique:
        return
    for col, (title, v) in zip(where.columns(len(unique)), unique, strict=True):
        col.markdown(f"**{title}**")
        clip_player(roots, bundle, v, data_root, container=col,
                    key=None if key is None else f"{key}_{v}")
