"""Thumbnail strips: the frames the sampler picks for a video, side by side in one JPEG.

The frames are those of the model input (same segment centres,
:func:`tvr.data.video.read_frames`) at ``size`` px; the export stores one strip per video
(``thumbs/<v>.jpg`` of a bundle) and the app draws them without decoding any video.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def encode_jpeg(strip: np.ndarray, quality: int = 85) -> bytes:
    """JPEG bytes of a uint8 ``[H, W, 3]`` image (used for thumbnail strips)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(strip)).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def render_thumbnail(
    record: Any, num_frames: int, size: int, quality: int = 85
) -> tuple[bytes, list[float | None], int]:
    """JPEG strip of the frames the sampler picks for ``record``.

    Args:
        record: a :class:`tvr.data.records.VideoTextRecord` (``video_path``, ``start``,
            ``end``).
        num_frames: frames the model samples (T).
        size: side of one frame in pixels (S).
        quality: JPEG quality (1-95).

    Returns:
        (JPEG bytes of ``[size, n * size, 3]``, ``T`` timestamps in seconds with None on
        padding, n real frames).
    """
    from tvr.data.video import read_frames

    decoded = read_frames(record.video_path, num_frames, size, record.start, record.end)
    strip = np.concatenate(list(decoded.frames), axis=1)  # [S, n*S, 3]
    n = int(decoded.frames.shape[0])
    times: list[float | None] = [float(t) for t in decoded.timestamps]
    times += [None] * (num_frames - n)
    return encode_jpeg(strip, quality), times, n
