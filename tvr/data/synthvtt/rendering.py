"""Frames from the meta file's numbers: shape states per frame, rasterising, mp4 writing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np

from tvr.data.synthvtt.meta import MetaVideo
from tvr.data.synthvtt.vocabulary import BACKGROUNDS, COLOURS, SHAPES

__all__ = [
    "CODEC",
    "CRF",
    "PRESET",
    "X264_PARAMS",
    "frame_states",
    "nearest_colour",
    "render_video",
    "shape_mask",
    "write_mp4",
]

# --- encoding ---------------------------------------------------------------------------------

CODEC = "libx264"
PRESET = "veryfast"
CRF = 18
# x264's lookahead and macroblock tree made run-to-run differences on these tiny frames (same
# input, same process, threads=1); without them the output is byte-identical, at ~25 % more size.
X264_PARAMS = "rc-lookahead=0:mbtree=0"


def frame_states(video: MetaVideo | Mapping[str, Any]) -> list[dict[str, Any] | None]:
    """Per-frame shape state of one video of the meta file (a :class:`MetaVideo`, or its JSON
    entry ``meta["videos"][video_id]``).

    Returns:
        A list of ``n_frames`` entries: ``None`` for a frame outside every event, else a dict
        with ``event`` (index), ``colour``, ``shape``, ``action``, ``x``, ``y`` (centre, in
        fractions of the frame side) and ``r`` (half-extent, same unit).
    """
    if isinstance(video, MetaVideo):
        video = video.to_json()
    states: list[dict[str, Any] | None] = [None] * int(video["n_frames"])
    for i, ev in enumerate(video["events"]):
        for f in range(ev["start_frame"], ev["end_frame"]):
            t = f - ev["start_frame"]
            states[f] = {
                "event": i,
                "colour": ev["colour"],
                "shape": ev["shape"],
                "action": ev["action"],
                "x": ev["x"] + ev["dx"] * t,
                "y": ev["y"] + ev["dy"] * t,
                "r": ev["r"] + ev["dr"] * t,
            }
    return states


def shape_mask(shape: str, x: float, y: float, r: float, size: int) -> np.ndarray:
    """Boolean mask of a shape centred at ``(x, y)`` with half-extent ``r`` (frame units).

    Shapes:
        returns ``[size, size]`` (rows = y, columns = x).
    """
    centres = (np.arange(size, dtype=np.float64) + 0.5) / size
    dx = centres[None, :] - x  # [1, S]
    dy = centres[:, None] - y  # [S, 1]
    adx, ady = np.abs(dx), np.abs(dy)
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        h = 0.85 * r
        return (adx <= h) & (ady <= h)
    if shape == "triangle":  # apex up, base at y + r with half-width r
        return (ady <= r) & (adx <= (dy + r) / 2.0)
    if shape == "cross":  # plus sign, arms of half-thickness 0.35 r
        t = 0.35 * r
        return ((adx <= r) & (ady <= t)) | ((ady <= r) & (adx <= t))
    raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")


def render_video(video: MetaVideo | Mapping[str, Any], size: int) -> np.ndarray:
    """Render one video of the meta file (as :func:`frame_states` takes it) to RGB frames,
    exactly as the generator encodes it.

    Shapes:
        returns ``[n_frames, size, size, 3]`` uint8.
    """
    if isinstance(video, MetaVideo):
        video = video.to_json()
    n = int(video["n_frames"])
    frames = np.empty((n, size, size, 3), dtype=np.uint8)
    frames[:] = np.asarray(BACKGROUNDS[video["background"]], dtype=np.uint8)
    for f, st in enumerate(frame_states(video)):
        if st is not None:
            mask = shape_mask(st["shape"], st["x"], st["y"], st["r"], size)
            frames[f][mask] = COLOURS[st["colour"]]
    return frames


def nearest_colour(rgb: Sequence[float] | np.ndarray) -> str:
    """Name of the palette colour (``COLOURS``) nearest to an RGB triple."""
    v = np.asarray(rgb, dtype=np.float64)
    return min(COLOURS, key=lambda c: float(np.sum((v - np.asarray(COLOURS[c])) ** 2)))


def write_mp4(path: str | Path, frames: np.ndarray, fps: int) -> None:
    """Encode RGB frames as browser-playable H.264 ``yuv420p`` mp4 (``movflags=faststart``).

    Deterministic (byte-identical output for identical frames): a single encoder thread, fixed
    preset and CRF, no lookahead (see ``X264_PARAMS``).

    Shapes:
        frames: ``[T, H, W, 3]`` uint8 with even ``H`` and ``W``.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"write_mp4 {path}: expected [T, H, W, 3] uint8, got {frames.shape} {frames.dtype}"
        )
    _, h, w, _ = frames.shape
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream(CODEC, rate=fps)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": PRESET, "crf": str(CRF), "x264-params": X264_PARAMS}
        stream.codec_context.thread_count = 1
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
