"""Sampling ``T`` frames of a clip by time: :func:`read_frames` (uint8 RGB, no normalisation).

It opens the file, resolves the window, chooses the sampling mode (``"auto"``, ``"seek"``,
``"decode"``, ``"keyframe"``; see the package docstring) and the decoder threading, lets a
:class:`~tvr.data.video.picker.FramePicker` pick the frames, and keeps the distinct ones in time
order.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Literal, NamedTuple

import av
import numpy as np

from tvr.data.video.container import VideoDecodeError, VideoInfo, open_video, stream_info
from tvr.data.video.picker import FramePicker
from tvr.data.video.pixels import resize_center_crop

logger = logging.getLogger(__name__)

Method = Literal["auto", "seek", "decode", "keyframe"]
METHODS: tuple[str, ...] = ("auto", "seek", "decode", "keyframe")
ThreadType = Literal["AUTO", "FRAME", "SLICE", "NONE"]
THREAD_TYPES: tuple[str, ...] = ("AUTO", "FRAME", "SLICE", "NONE")

# "auto" seeks only when the window holds at least this many frames per sampled frame.
AUTO_SEEK_MIN_FRAMES_PER_SAMPLE = 4


class DecodedFrames(NamedTuple):
    """Distinct frames picked from a clip, as uint8 RGB.

    Shapes:
        frames: ``[n, H, W, 3]`` uint8, ``1 <= n <= T``, in time order.
        timestamps: ``[n]`` float64 presentation times in seconds.
    """

    frames: np.ndarray
    timestamps: np.ndarray
    method: str  # "seek" | "decode" | "keyframe" | "cache": how the frames were obtained


def _resolve_window(
    path: Path, start: float | None, end: float | None, duration: float | None
) -> tuple[float, float | None]:
    a = 0.0 if start is None else float(start)
    if a < 0 or not math.isfinite(a):
        raise ValueError(f"{path}: window start must be a finite number >= 0, got {start}")
    b = None if end is None else float(end)
    if b is not None and not b > a:
        raise ValueError(f"{path}: window end {end} must be greater than start {a}")
    if duration is not None:
        if a >= duration:
            raise VideoDecodeError(
                path, f"window start {a:.3f} s lies beyond the clip's duration {duration:.3f} s"
            )
        if b is None or b > duration:
            if b is not None:
                logger.debug("%s: window end %.3f s clamped to duration %.3f s", path, b, duration)
            b = duration
    return a, b


def _choose_method(method: str, info: VideoInfo, a: float, b: float | None, num: int) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown decode method {method!r}; expected one of {', '.join(METHODS)}")
    if method == "decode":
        return "decode"
    if method in ("seek", "keyframe"):
        if b is None:
            raise VideoDecodeError(
                info.path,
                f"cannot use method={method!r}: the container reports no duration "
                "(use method='decode')",
            )
        return method
    if not info.indexed or b is None or info.fps is None:
        return "decode"
    window_frames = (b - a) * info.fps
    return "seek" if window_frames >= AUTO_SEEK_MIN_FRAMES_PER_SAMPLE * num else "decode"


def read_frames(
    path: str | Path,
    num_frames: int,
    size: int | None = None,
    start: float | None = None,
    end: float | None = None,
    method: Method = "auto",
    thread_type: ThreadType | None = None,
) -> DecodedFrames:
    """Sample ``num_frames`` uniformly over a clip and return the distinct frames as uint8 RGB.

    No normalisation: this is also the thumbnail reader of the analysis layer.

    Args:
        path: video file.
        num_frames: ``T``, the number of segment centres.
        size: resize the short side to ``size`` and centre-crop a square; ``None`` keeps the
            decoded resolution.
        start: window start in seconds (``None`` = 0).
        end: window end in seconds (``None`` = end of the clip; clamped to the duration).
        method: ``"auto"``, ``"seek"`` or ``"decode"`` (the same frames, at the segment
            centres), or ``"keyframe"`` (the keyframe nearest each centre within its segment;
            see the module docstring).
        thread_type: FFmpeg decoder threading (``"AUTO"``, ``"FRAME"``, ``"SLICE"``,
            ``"NONE"``); ``None`` = the mode's default. Never changes the frames.

    Returns:
        :class:`DecodedFrames` with ``1 <= n <= T`` distinct frames in time order; its
        ``method`` is the mode that ran (``"keyframe"`` falls back to ``"seek"`` on files
        without a keyframe index).

    Shapes:
        frames: ``[n, H, W, 3]`` uint8 (``H = W = size`` when ``size`` is given).
        timestamps: ``[n]`` float64 seconds.

    Raises:
        VideoDecodeError: missing, empty, truncated, corrupt or undecodable file, or a window
            outside the clip.
        ValueError: bad arguments (non-positive ``num_frames``, ``end <= start``, unknown
            ``method``).
    """
    path = Path(path)
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    if thread_type is not None and thread_type not in THREAD_TYPES:
        raise ValueError(
            f"unknown thread_type {thread_type!r}; expected one of {', '.join(THREAD_TYPES)}"
        )
    container, stream = open_video(path)
    with container:
        info = stream_info(path, container, stream)
        a, b = _resolve_window(path, start, end, info.duration)
        chosen = _choose_method(method, info, a, b, num_frames)
        if thread_type is not None:
            stream.thread_type = thread_type
        elif chosen == "decode":
            stream.thread_type = "AUTO"
        picker = FramePicker(path, container, stream, info)
        snapped = None
        if chosen == "keyframe":
            assert b is not None
            snapped = picker.by_keyframes(a, b, num_frames)
            if snapped is None:  # no keyframe index, or no keyframe in any segment
                chosen = "seek"
        if snapped is not None:
            picks, _ = snapped
        elif chosen == "seek":
            assert b is not None
            picks, _ = picker.by_seeking(a, b, num_frames)
        else:
            picks, _ = picker.by_decoding(a, b, num_frames)
        if not picks:
            raise VideoDecodeError(path, "no frame could be decoded in the window")
        distinct: list[tuple[float, av.VideoFrame]] = []
        seen: set[float] = set()
        for t, frame in picks:
            if t not in seen:
                seen.add(t)
                distinct.append((t, frame))
        try:
            images = [frame.to_ndarray(format="rgb24") for _, frame in distinct]
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise VideoDecodeError(path, f"cannot convert frames to RGB ({exc})") from exc
    if size is not None:
        images = [resize_center_crop(img, size) for img in images]
    frames = np.stack(images).astype(np.uint8, copy=False)
    timestamps = np.array([t for t, _ in distinct], dtype=np.float64)
    return DecodedFrames(frames=frames, timestamps=timestamps, method=chosen)
