"""The model-ready frame sampler: :class:`FrameSampler` turns a clip into a CLIP-normalised,
zero-padded ``[T, 3, S, S]`` tensor with its mask and timestamps, through an optional on-disk
cache of the sampled frames (:mod:`tvr.data.video.frame_cache`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from tvr.data.video.decode import (
    METHODS,
    THREAD_TYPES,
    DecodedFrames,
    Method,
    ThreadType,
    read_frames,
)
from tvr.data.video.frame_cache import cache_entry, load_entry, store_entry
from tvr.data.video.pixels import normalize_frames


class SampledClip(NamedTuple):
    """The model-ready output of :class:`FrameSampler`.

    Shapes:
        video: ``[T, 3, S, S]`` float32, CLIP-normalised; padding slots are zeros.
        mask: ``[T]`` int64, 1 on real frames (a prefix), 0 on padding.
        timestamps: ``[T]`` float64 seconds, ``NaN`` on padding.
    """

    video: torch.Tensor
    mask: torch.Tensor
    timestamps: np.ndarray


def sampling_options(frame_sampling: str, decode_threads: str) -> tuple[Method, ThreadType | None]:
    """Check the config's ``data.frame_sampling`` and ``data.decode_threads`` values.

    Returns:
        The sampling mode and the thread type (``None`` for an empty ``decode_threads``).

    Raises:
        ValueError: a value that names no mode, with the key and the choices.
    """
    if frame_sampling not in METHODS:
        raise ValueError(
            f"data.frame_sampling={frame_sampling!r}: expected one of {', '.join(METHODS)}"
        )
    if decode_threads and decode_threads not in THREAD_TYPES:
        raise ValueError(
            f"data.decode_threads={decode_threads!r}: expected one of "
            f"{', '.join(THREAD_TYPES)} (or empty for the mode's default)"
        )
    return frame_sampling, (decode_threads or None)  # type: ignore[return-value]


class FrameSampler:
    """Uniformly sample ``T`` frames of a clip into a CLIP-normalised, padded tensor.

    Args:
        num_frames: ``T``.
        size: output side ``S`` (short side resized with bicubic, then centre crop).
        method: ``"auto"`` | ``"seek"`` | ``"decode"`` (exact segment centres) |
            ``"keyframe"`` (keyframe-snapped; see the module docstring); config
            ``data.frame_sampling``.
        cache_dir: folder for an on-disk cache of the sampled uint8 frames, or ``None``.
            Entries are keyed by (absolute path, mtime, size in bytes, T, S, start, end, and
            whether frames are keyframe-snapped), so an edited file misses; each entry is one
            ``.npz`` (``frames``, ``timestamps``) written atomically and read with
            ``allow_pickle=False``.
        thread_type: FFmpeg decoder threading, ``None`` = the mode's default; config
            ``data.decode_threads``.

    Shapes:
        returns: :class:`SampledClip` with video ``[T, 3, S, S]`` float32, mask ``[T]``
        int64 (1 on real frames, which come first), timestamps ``[T]`` float64 (``NaN`` on
        padding).

    Example:
        >>> sampler = FrameSampler(12, 224)
        >>> video, mask, times = sampler("clip.mp4", start=3.0, end=9.0)
    """

    def __init__(
        self,
        num_frames: int,
        size: int,
        method: Method = "auto",
        cache_dir: str | Path | None = None,
        thread_type: ThreadType | None = None,
    ) -> None:
        if num_frames <= 0:
            raise ValueError(f"FrameSampler: num_frames must be positive, got {num_frames}")
        if size <= 0:
            raise ValueError(f"FrameSampler: size must be positive, got {size}")
        if method not in METHODS:
            raise ValueError(
                f"FrameSampler: unknown method {method!r}; expected one of {', '.join(METHODS)}"
            )
        self.num_frames = num_frames
        self.size = size
        if thread_type is not None and thread_type not in THREAD_TYPES:
            raise ValueError(
                f"FrameSampler: unknown thread_type {thread_type!r}; expected one of "
                f"{', '.join(THREAD_TYPES)}"
            )
        self.method: Method = method
        self.thread_type: ThreadType | None = thread_type
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.cache_hits = 0
        self.cache_misses = 0

    @classmethod
    def from_config(cls, data: Any) -> FrameSampler:
        """The sampler a config's ``data`` section asks for (``num_frames``, ``image_size``,
        ``frame_sampling``, ``frame_cache``, ``decode_threads``).

        Raises:
            ValueError: ``data.frame_sampling`` or ``data.decode_threads`` names no mode.
        """
        method, thread_type = sampling_options(data.frame_sampling, data.decode_threads)
        return cls(
            data.num_frames,
            data.image_size,
            method=method,
            cache_dir=data.frame_cache or None,
            thread_type=thread_type,
        )

    def __repr__(self) -> str:
        return (
            f"FrameSampler(num_frames={self.num_frames}, size={self.size}, "
            f"method={self.method!r}, cache_dir={self.cache_dir}, "
            f"thread_type={self.thread_type!r})"
        )

    def __call__(
        self, path: str | Path, start: float | None = None, end: float | None = None
    ) -> SampledClip:
        decoded = self.read_uint8(path, start, end)
        n = decoded.frames.shape[0]
        video = torch.zeros(self.num_frames, 3, self.size, self.size, dtype=torch.float32)
        video[:n] = normalize_frames(decoded.frames)
        mask = torch.zeros(self.num_frames, dtype=torch.long)
        mask[:n] = 1
        timestamps = np.full(self.num_frames, np.nan, dtype=np.float64)
        timestamps[:n] = decoded.timestamps
        return SampledClip(video=video, mask=mask, timestamps=timestamps)

    def read_uint8(
        self, path: str | Path, start: float | None = None, end: float | None = None
    ) -> DecodedFrames:
        """The distinct sampled frames as uint8 ``[n, S, S, 3]`` (through the cache if any)."""
        path = Path(path)
        entry = None
        if self.cache_dir is not None:
            entry = cache_entry(self.cache_dir, path, self.num_frames, self.size, start, end,
                                snapped=self.method == "keyframe")
        if entry is not None:
            cached = load_entry(entry, self.num_frames, self.size)
            if cached is not None:
                self.cache_hits += 1
                return cached
        self.cache_misses += 1
        decoded = read_frames(
            path, self.num_frames, self.size, start, end, self.method, self.thread_type
        )
        if entry is not None:
            store_entry(entry, decoded)
        return decoded
