"""Opening a video file with PyAV and reading what its container says about the first video
stream (:func:`probe_video`), plus :class:`VideoDecodeError`, the error every decode problem
becomes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import av

# Container families whose demuxer reads a frame index (seek is exact and cheap).
_INDEXED_FORMATS = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"})


class VideoDecodeError(RuntimeError):
    """A video file that cannot be decoded (missing, empty, truncated, corrupt or garbage).

    Attributes:
        path: the file.
        reason: what went wrong, in words.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot decode video {self.path}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:  # picklable across DataLoader workers
        return (type(self), (self.path, self.reason))


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the first video stream.

    Attributes:
        path: the file.
        format_name: demuxer name(s), e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"`` or ``"matroska,webm"``.
        codec: decoder name, e.g. ``"h264"``.
        width: frame width in pixels.
        height: frame height in pixels.
        duration: stream duration in seconds (stream header, else the stream's ``DURATION``
            tag, else the container duration), or ``None`` when nothing gives one.
        num_frames: frame count from the container index, or ``None`` (webm/mkv).
        fps: average frame rate, or ``None``.
        indexed: True for mp4/mov-family files with a frame count (seeking is exact and cheap).
    """

    path: Path
    format_name: str
    codec: str
    width: int
    height: int
    duration: float | None
    num_frames: int | None
    fps: float | None
    indexed: bool


_DURATION_TAG = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def _parse_duration_tag(value: str | None) -> float | None:
    """Parse a Matroska ``DURATION`` tag (``"HH:MM:SS.nnnnnnnnn"``) to seconds."""
    if not value:
        return None
    m = _DURATION_TAG.match(value.strip())
    if m is None:
        return None
    hours, minutes, seconds = m.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def open_video(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open ``path`` and return the container and its first video stream."""
    if not path.exists():
        raise VideoDecodeError(path, "file does not exist")
    if not path.is_file():
        raise VideoDecodeError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError) as exc:
        raise VideoDecodeError(path, f"cannot open container ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(path, "the file has no video stream")
    return container, container.streams.video[0]


def stream_info(
    path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> VideoInfo:
    tb = stream.time_base
    duration: float | None = None
    if stream.duration is not None and tb is not None and stream.duration > 0:
        duration = float(stream.duration * tb)
    if duration is None:
        duration = _parse_duration_tag(stream.metadata.get("DURATION"))
    if duration is None and container.duration is not None and container.duration > 0:
        duration = container.duration / 1e6
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else None
    num_frames = stream.frames if stream.frames and stream.frames > 0 else None
    formats = set(container.format.name.split(","))
    indexed = bool(formats & _INDEXED_FORMATS) and num_frames is not None and duration is not None
    return VideoInfo(
        path=path,
        format_name=container.format.name,
        codec=stream.codec_context.name,
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        duration=duration,
        num_frames=num_frames,
        fps=fps,
        indexed=indexed,
    )


def probe_video(path: str | Path) -> VideoInfo:
    """Read the container metadata of ``path`` without decoding frames.

    Raises:
        VideoDecodeError: the file is missing, empty, not a video, or unreadable.
    """
    path = Path(path)
    container, stream = open_video(path)
    with container:
        return stream_info(path, container, stream)
