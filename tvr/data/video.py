"""Video decoding and uniform frame sampling with PyAV.

A clip (the whole file, or the window ``[start, end]`` seconds) is split into ``T`` equal
segments and the frame *on screen* at the centre of each segment is taken: the last frame whose
presentation time is at or before the centre (the first frame of the stream when the centre lies
before it). Frames are chosen by presentation timestamp, never by index, so variable-frame-rate
files are sampled correctly. Times are in seconds from the video stream's first timestamp.

Two decoders give identical frames:

* ``"seek"``: per target, ``container.seek(pts, stream=s, backward=True)`` to the keyframe at
  or before it, then decode forward to the target. Fast on indexed containers (mp4/mov).
* ``"decode"``: decode the stream once from the start. Works on anything, including webm/mkv
  whose stream carries no frame count or duration, and it notices files that end early.

``"auto"`` seeks on indexed mp4/mov files whose window holds many more frames than ``T`` and
decodes otherwise.

One more mode trades exact times for speed, and is only used when asked for:

* ``"keyframe"`` (keyframe-snapped): the clip is still split into ``T`` segments, but in each
  segment the *keyframe* nearest its centre is taken (seek to it, keep the first decoded
  frame), so a frame costs one seek and one intra-frame decode. A segment that holds no
  keyframe is sampled exactly as ``"seek"`` would. Every frame still comes from its own
  segment (so frames are distinct and in order), but its time is the keyframe's, up to half a
  segment away from the centre; :class:`DecodedFrames` records the actual timestamps. It
  needs the container's keyframe index (mp4/mov); without one, or when no segment holds a
  keyframe, it samples exactly by seeking and reports ``method="seek"``.

Threads: ``thread_type`` (``"AUTO"``, ``"FRAME"``, ``"SLICE"``, ``"NONE"``; PyAV's
``stream.thread_type``) chooses FFmpeg's decoder threading. ``None`` keeps each mode's own
choice: ``"AUTO"`` (frame and slice threads) for ``"decode"``, the codec's default for the
seeking modes, where frame threads decode ahead of a target only to be flushed by the next
seek. Threading never changes which frames are returned.

Frames then go through CLIP's pixel pipeline (resize the short side with bicubic, centre-crop,
scale to [0, 1], normalise with the CLIP mean/std), in PIL/numpy/torch only.

Short clips: when fewer than ``T`` *distinct* frames are picked (a clip with fewer frames than
``T``, or a variable-frame-rate window where two centres fall on one frame), each distinct frame
appears once, in time order, and the remaining slots are **zero padding** (zeros after
normalisation) with ``mask = 0`` and timestamp ``NaN``. A clip always has at least one real frame
or :class:`VideoDecodeError` is raised; the library never returns a silent all-zero video.

Corrupt files: besides FFmpeg errors, a stream that stops well before the end its container
claims, and a hole in the timestamps (consecutive decoded frames more than
``max(0.5 s, 3 frame intervals)`` apart, which is what a VP9 webm corrupted mid-stream decodes
to, silently), raise :class:`VideoDecodeError`, so the dataset's ``on_decode_error`` policy
applies to them like to any other undecodable file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, NamedTuple

import av
import numpy as np
import torch
from PIL import Image

from tvr.io import atomic_path

logger = logging.getLogger(__name__)

CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

Method = Literal["auto", "seek", "decode", "keyframe"]
METHODS: tuple[str, ...] = ("auto", "seek", "decode", "keyframe")
ThreadType = Literal["AUTO", "FRAME", "SLICE", "NONE"]
THREAD_TYPES: tuple[str, ...] = ("AUTO", "FRAME", "SLICE", "NONE")

# Container families whose demuxer reads a frame index (seek is exact and cheap).
_INDEXED_FORMATS = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"})
# "auto" seeks only when the window holds at least this many frames per sampled frame.
AUTO_SEEK_MIN_FRAMES_PER_SAMPLE = 4
# Slack (s) when comparing a timestamp with a target time (float rounding of pts * time_base).
_TIME_EPS = 1e-6
# A stream that ends earlier than its container claims by more than
# max(_MIN_SHORTFALL_S, _SHORTFALL_FRAMES frame intervals) is reported as truncated.
_MIN_SHORTFALL_S = 0.5
_SHORTFALL_FRAMES = 3
# Likewise, two consecutive frames further apart than that are a hole in the stream (packets a
# corrupt file lost mid-stream; decoders such as VP9's drop them without an error).
_CACHE_VERSION = 1


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


class DecodedFrames(NamedTuple):
    """Distinct frames picked from a clip, as uint8 RGB.

    Shapes:
        frames: ``[n, H, W, 3]`` uint8, ``1 <= n <= T``, in time order.
        timestamps: ``[n]`` float64 presentation times in seconds.
    """

    frames: np.ndarray
    timestamps: np.ndarray
    method: str  # "seek" | "decode" | "keyframe" | "cache": how the frames were obtained


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


# --------------------------------------------------------------------------------------------
# Pixels
# --------------------------------------------------------------------------------------------


def resize_center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Resize the short side to ``size`` (PIL bicubic) and centre-crop ``size x size``.

    The long side becomes ``int(size * long / short)`` and the crop offset
    ``round((side - size) / 2)``, as in CLIP's preprocessing.

    Shapes:
        image: ``[H, W, 3]`` uint8 RGB.
        returns: ``[size, size, 3]`` uint8 RGB.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"expected an [H, W, 3] uint8 RGB image, got shape {image.shape} dtype {image.dtype}"
        )
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    h, w = image.shape[:2]
    if min(h, w) != size:
        if w <= h:
            new_w, new_h = size, int(size * h / w)
        else:
            new_w, new_h = int(size * w / h), size
        image = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BICUBIC))
        h, w = new_h, new_w
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return np.ascontiguousarray(image[top : top + size, left : left + size])


def normalize_frames(frames: np.ndarray) -> torch.Tensor:
    """Scale uint8 RGB frames to [0, 1] and normalise with the CLIP mean/std.

    Shapes:
        frames: ``[n, H, W, 3]`` uint8.
        returns: ``[n, 3, H, W]`` float32.
    """
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"expected [n, H, W, 3] uint8 frames, got shape {frames.shape} dtype {frames.dtype}"
        )
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std).contiguous()


def segment_centres(start: float, end: float, num: int) -> np.ndarray:
    """Centres of ``num`` equal segments of ``[start, end]`` (float64, ``[num]``)."""
    if num <= 0:
        raise ValueError(f"number of frames must be positive, got {num}")
    if not end > start:
        raise ValueError(f"window end {end} must be greater than start {start}")
    return start + (np.arange(num, dtype=np.float64) + 0.5) * (end - start) / num


# --------------------------------------------------------------------------------------------
# Container access
# --------------------------------------------------------------------------------------------

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


def _open(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
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


def _stream_info(
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
    container, stream = _open(path)
    with container:
        return _stream_info(path, container, stream)


class _Picker:
    """Selects frames by presentation time from one open stream."""

    def __init__(
        self,
        path: Path,
        container: av.container.InputContainer,
        stream: av.video.stream.VideoStream,
        info: VideoInfo,
    ) -> None:
        self.path = path
        self.container = container
        self.stream = stream
        self.info = info
        self.time_base: Fraction = stream.time_base or Fraction(1, 1)
        self.start_pts = stream.start_time if stream.start_time is not None else 0
        self.interval = 1.0 / info.fps if info.fps else 0.04
        self._last_time: float | None = None
        self._seeking = False

    def time_of(self, frame: av.VideoFrame) -> float:
        if frame.pts is None:  # rare (some AVI): continue at the nominal rate
            if self._seeking:
                raise VideoDecodeError(
                    self.path,
                    "frames carry no timestamps, so seeking is unreliable (use method='decode')",
                )
            t = 0.0 if self._last_time is None else self._last_time + self.interval
        else:
            t = float((frame.pts - self.start_pts) * self.time_base)
        self._last_time = t
        return t

    @property
    def max_gap(self) -> float:
        """Seconds two consecutive frames may lie apart before the stream counts as corrupt."""
        return max(_MIN_SHORTFALL_S, _SHORTFALL_FRAMES * self.interval)

    def _frames(self):
        """Decoded ``(time, frame)`` pairs; FFmpeg errors and holes in the timestamps (more
        than :attr:`max_gap` between consecutive frames) become VideoDecodeError."""
        count = 0
        prev: float | None = None
        try:
            for frame in self.container.decode(self.stream):
                count += 1
                t = self.time_of(frame)
                if prev is not None and frame.pts is not None and t - prev > self.max_gap:
                    raise VideoDecodeError(
                        self.path,
                        f"frames jump from {prev:.3f} s to {t:.3f} s ({t - prev:.2f} s without "
                        f"a frame; the stream's frame interval is {self.interval:.3f} s): data "
                        "is missing mid-stream (corrupt file)",
                    )
                prev = t
                yield t, frame
        except (av.FFmpegError, OSError) as exc:
            raise VideoDecodeError(
                self.path, f"decoding failed after {count} frame(s) ({exc})"
            ) from exc

    def check_reaches(self, last_time: float, claimed_end: float | None) -> None:
        """Raise when the stream stops well before the end the container claims."""
        if claimed_end is None:
            return
        slack = max(_MIN_SHORTFALL_S, _SHORTFALL_FRAMES * self.interval)
        if last_time + self.interval < claimed_end - slack:
            raise VideoDecodeError(
                self.path,
                f"frames stop at {last_time:.3f} s but the container reports "
                f"{claimed_end:.3f} s (truncated or corrupt file)",
            )

    def by_decoding(
        self, start: float, end: float | None, num: int
    ) -> tuple[list[tuple[float, av.VideoFrame]], np.ndarray]:
        """Decode the stream from its beginning and pick the frame on screen at each target."""
        frames = self._frames()
        count = 0
        last_time: float | None = None
        if end is None:  # duration unknown: keep the window's frames, then place the targets
            kept = []
            for t, frame in frames:
                count += 1
                last_time = t
                if t + self.interval > start + _TIME_EPS:
                    kept.append((t, frame))
            if not kept:
                raise VideoDecodeError(
                    self.path, f"no frame decoded at or after {start:.3f} s ({count} decoded)"
                )
            end = kept[-1][0] + self.interval
            targets = segment_centres(start, end, num)
            return _assign(iter(kept), targets), targets
        targets = segment_centres(start, end, num)
        picks: list[tuple[float, av.VideoFrame] | None] = [None] * num
        ti = 0
        prev: tuple[float, av.VideoFrame] | None = None
        reached_end = False
        for t, frame in frames:
            count += 1
            last_time = t
            while ti < num and t > targets[ti] + _TIME_EPS:
                picks[ti] = prev if prev is not None else (t, frame)
                ti += 1
            prev = (t, frame)
            if t >= end - _TIME_EPS:  # first frame outside the window: nothing left to pick
                reached_end = True
                break
        if prev is None:
            raise VideoDecodeError(self.path, "the stream yielded no frames")
        for i in range(ti, num):
            picks[i] = prev
        if not reached_end:
            assert last_time is not None
            self.check_reaches(last_time, self.info.duration)
            whole = (
                start <= _TIME_EPS
                and self.info.duration is not None
                and end >= (self.info.duration - _TIME_EPS)
            )
            if whole and self.info.num_frames is not None and count < self.info.num_frames:
                raise VideoDecodeError(
                    self.path,
                    f"decoded {count} of the {self.info.num_frames} frames the container "
                    "indexes (truncated or corrupt file)",
                )
        return [p for p in picks if p is not None], targets

    def keyframe_pts(self) -> np.ndarray | None:
        """Presentation timestamps (stream ticks, sorted int64) of the indexed keyframes, or
        None without an index.

        Index timestamps are decode times; they are shifted by the first frame's
        presentation delay, which is exact for closed-GOP streams. They steer the
        seek-or-continue choice of ``"seek"`` and the seeks of ``"keyframe"``; the times
        returned are always those of the decoded frames.
        """
        entries = getattr(self.stream, "index_entries", None)
        if entries is None or len(entries) == 0:
            return None
        first = entries[0].timestamp
        keys = [e.timestamp for e in entries if e.is_keyframe]
        if not keys:
            return None
        delay = self.start_pts - first
        return np.sort(np.array([k + delay for k in keys], dtype=np.int64))

    def keyframe_times(self) -> np.ndarray | None:
        """Presentation times in seconds of the indexed keyframes (sorted), or None."""
        pts = self.keyframe_pts()
        if pts is None:
            return None
        return np.array([float((int(k) - self.start_pts) * self.time_base) for k in pts])

    def _keyframe_at(self, pts: int) -> tuple[float, av.VideoFrame] | None:
        """Seek to the keyframe at or before ``pts`` and decode that one packet alone.

        The packet is decoded and the decoder drained at once, so no following frame is
        decoded to fill the decoder's reorder delay (the next seek resets the decoder).
        Returns None when the first packet after the seek is not a keyframe.
        """
        try:
            self.container.seek(pts, stream=self.stream, backward=True)
            for packet in self.container.demux(self.stream):
                if packet.size == 0:  # the demuxer's end-of-stream packet
                    return None
                if not packet.is_keyframe:
                    return None
                frames = [*self.stream.codec_context.decode(packet)]
                frames += self.stream.codec_context.decode(None)
                return (self.time_of(frames[0]), frames[0]) if frames else None
        except (av.FFmpegError, OSError) as exc:
            t = float((pts - self.start_pts) * self.time_base)
            raise VideoDecodeError(
                self.path, f"decoding the keyframe at {t:.3f} s failed ({exc})"
            ) from exc
        return None

    def by_keyframes(
        self, start: float, end: float, num: int
    ) -> tuple[list[tuple[float, av.VideoFrame]], np.ndarray] | None:
        """Per segment: the keyframe nearest its centre, else the exact frame (as seeking).

        Returns None (the caller then seeks exactly) when the stream has no keyframe index or
        no segment holds a keyframe.
        """
        key_pts = self.keyframe_pts()
        if key_pts is None:
            return None
        key_times = np.array([float((int(k) - self.start_pts) * self.time_base) for k in key_pts])
        targets = segment_centres(start, end, num)
        edges = start + np.arange(num + 1, dtype=np.float64) * (end - start) / num
        chosen: list[int | None] = []  # index into key_pts per segment, None = exact
        for i, target in enumerate(targets):
            inside = np.flatnonzero(
                (key_times >= edges[i] - _TIME_EPS) & (key_times < edges[i + 1] - _TIME_EPS)
            )
            chosen.append(
                int(inside[np.argmin(np.abs(key_times[inside] - target))]) if len(inside) else None
            )
        if all(c is None for c in chosen):
            return None
        self._seeking = True
        picks: list[tuple[float, av.VideoFrame] | None] = [None] * num
        for i, k in enumerate(chosen):
            if k is None:
                continue
            first = self._keyframe_at(int(key_pts[k]))
            # the index's times are estimates: keep the frame only inside its segment
            if first is not None and edges[i] - _TIME_EPS <= first[0] < edges[i + 1] - _TIME_EPS:
                picks[i] = first
        exact = [i for i, p in enumerate(picks) if p is None]
        if exact:
            for i, pick in zip(exact, self._seek_targets(targets[exact]), strict=True):
                picks[i] = pick
        return [p for p in picks if p is not None], targets

    def by_seeking(
        self, start: float, end: float, num: int
    ) -> tuple[list[tuple[float, av.VideoFrame]], np.ndarray]:
        """Per target: seek to the keyframe at or before it and decode forward to it.

        When the decoder already sits between that keyframe and the target (sparse keyframes),
        it keeps decoding forward instead of seeking back, so a clip is never decoded more
        than about once.
        """
        targets = segment_centres(start, end, num)
        return self._seek_targets(targets), targets

    def _seek_targets(self, targets: np.ndarray) -> list[tuple[float, av.VideoFrame]]:
        """The frame on screen at each of the sorted ``targets`` (see :meth:`by_seeking`)."""
        self._seeking = True
        keys = self.keyframe_times()
        picks: list[tuple[float, av.VideoFrame]] = []
        frames = None  # the live decode generator (None: must seek)
        prev: tuple[float, av.VideoFrame] | None = None  # last frame at or before the target
        after: tuple[float, av.VideoFrame] | None = None  # first frame past the last target
        for target in targets:
            if picks and after is not None and target + _TIME_EPS < after[0]:
                picks.append(picks[-1])  # the same frame is still on screen
                continue
            if picks and frames is None and after is None:
                picks.append(picks[-1])  # the stream ended before the previous target
                continue
            resume = (
                frames is not None
                and after is not None
                and keys is not None
                and _last_at_or_before(keys, target) <= after[0] + _TIME_EPS
            )
            if resume:
                prev, after = after, None
            else:
                pts = self.start_pts + int(math.floor(target / self.time_base))
                try:
                    self.container.seek(pts, stream=self.stream, backward=True)
                except (av.FFmpegError, OSError) as exc:
                    raise VideoDecodeError(
                        self.path, f"seek to {target:.3f} s failed ({exc})"
                    ) from exc
                frames = self._frames()
                prev = after = None
            assert frames is not None
            for t, frame in frames:
                if t > target + _TIME_EPS:
                    after = (t, frame)
                    break
                prev = (t, frame)
            else:
                frames = None  # end of stream: it must be the real end
                if prev is not None:
                    self.check_reaches(prev[0], self.info.duration)
            if prev is None and after is None:
                raise VideoDecodeError(
                    self.path, f"no frame could be decoded after seeking to {target:.3f} s"
                )
            picks.append(prev if prev is not None else after)  # type: ignore[arg-type]
        return picks


def _last_at_or_before(sorted_times: np.ndarray, t: float) -> float:
    """The largest element <= t (the first element when none is)."""
    i = int(np.searchsorted(sorted_times, t + _TIME_EPS, side="right")) - 1
    return float(sorted_times[max(i, 0)])


def _assign(pairs, targets: np.ndarray) -> list[tuple[float, av.VideoFrame]]:
    """Pick, for each sorted target, the last pair at or before it (else the first pair)."""
    picks: list[tuple[float, av.VideoFrame]] = []
    ti = 0
    prev = None
    for t, frame in pairs:
        while ti < len(targets) and t > targets[ti] + _TIME_EPS:
            picks.append(prev if prev is not None else (t, frame))
            ti += 1
        prev = (t, frame)
    while ti < len(targets) and prev is not None:
        picks.append(prev)
        ti += 1
    return picks


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
    container, stream = _open(path)
    with container:
        info = _stream_info(path, container, stream)
        a, b = _resolve_window(path, start, end, info.duration)
        chosen = _choose_method(method, info, a, b, num_frames)
        if thread_type is not None:
            stream.thread_type = thread_type
        elif chosen == "decode":
            stream.thread_type = "AUTO"
        picker = _Picker(path, container, stream, info)
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


# --------------------------------------------------------------------------------------------
# Sampler with cache
# --------------------------------------------------------------------------------------------


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
        entry = self._cache_entry(path, start, end)
        if entry is not None:
            cached = self._load(entry)
            if cached is not None:
                self.cache_hits += 1
                return cached
        self.cache_misses += 1
        decoded = read_frames(
            path, self.num_frames, self.size, start, end, self.method, self.thread_type
        )
        if entry is not None:
            self._store(entry, decoded)
        return decoded

    # -- cache ----------------------------------------------------------------------------

    def _cache_entry(self, path: Path, start: float | None, end: float | None) -> Path | None:
        if self.cache_dir is None:
            return None
        try:
            st = path.stat()
        except OSError:
            return None  # the decoder reports the missing file
        fields: dict[str, object] = {
            "v": _CACHE_VERSION,
            "path": str(path.resolve()),
            "mtime_ns": st.st_mtime_ns,
            "bytes": st.st_size,
            "T": self.num_frames,
            "S": self.size,
            "start": start,
            "end": end,
        }
        if self.method == "keyframe":  # other frames than the exact modes, which share entries
            fields["snapped"] = True
        key = json.dumps(fields, sort_keys=True)
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self.cache_dir / digest[:2] / f"{digest}.npz"

    def _load(self, entry: Path) -> DecodedFrames | None:
        if not entry.is_file():
            return None
        try:
            with np.load(entry, allow_pickle=False) as data:
                frames = data["frames"]
                timestamps = data["timestamps"]
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("ignoring unreadable frame-cache entry %s (%s)", entry, exc)
            return None
        n = frames.shape[0] if frames.ndim == 4 else -1
        if (
            frames.dtype != np.uint8
            or frames.shape[1:] != (self.size, self.size, 3)
            or not 1 <= n <= self.num_frames
            or timestamps.shape != (n,)
        ):
            logger.warning("ignoring malformed frame-cache entry %s", entry)
            return None
        return DecodedFrames(
            frames=frames, timestamps=timestamps.astype(np.float64), method="cache"
        )

    def _store(self, entry: Path, decoded: DecodedFrames) -> None:
        try:
            with atomic_path(entry) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, frames=decoded.frames, timestamps=decoded.timestamps)
        except OSError as exc:  # a full or read-only cache must not stop training
            logger.warning("could not write frame-cache entry %s (%s)", entry, exc)
