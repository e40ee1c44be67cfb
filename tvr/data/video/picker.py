"""Selecting frames by presentation time from one open PyAV stream (:class:`FramePicker`).

The three ways to reach the frame on screen at each target time (decode from the start, seek per
target, or keyframe-snapped), the timestamp-hole and truncation checks, and the segment-centre
rule every mode samples at (:func:`segment_centres`). :func:`tvr.data.video.read_frames` opens the
file and chooses the mode; the package docstring describes the modes.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tvr.data.video.container import VideoDecodeError, VideoInfo

# Slack (s) when comparing a timestamp with a target time (float rounding of pts * time_base).
_TIME_EPS = 1e-6
# A stream that ends earlier than its container claims by more than
# max(_MIN_SHORTFALL_S, _SHORTFALL_FRAMES frame intervals) is reported as truncated.
# Likewise, two consecutive frames further apart than that are a hole in the stream (packets a
# corrupt file lost mid-stream; decoders such as VP9's drop them without an error).
_MIN_SHORTFALL_S = 0.5
_SHORTFALL_FRAMES = 3


def segment_centres(start: float, end: float, num: int) -> np.ndarray:
    """Centres of ``num`` equal segments of ``[start, end]`` (float64, ``[num]``)."""
    if num <= 0:
        raise ValueError(f"number of frames must be positive, got {num}")
    if not end > start:
        raise ValueError(f"window end {end} must be greater than start {start}")
    return start + (np.arange(num, dtype=np.float64) + 0.5) * (end - start) / num


class FramePicker:
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
