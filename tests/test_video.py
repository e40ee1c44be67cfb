"""Tests for tvr.data.video: uniform sampling, seek vs decode, VFR, pixels, bad files, cache."""

from __future__ import annotations

import logging
import math
import os
import pickle
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from tvr.data.video import (
    CLIP_MEAN,
    CLIP_STD,
    FrameSampler,
    VideoDecodeError,
    normalize_frames,
    probe_video,
    read_frames,
    resize_center_crop,
    segment_centres,
)

FPS = 15
STEP = 5  # grey level of frame i is BASE + STEP * i, so the colour tells the frame index
BASE = 10


def grey(i: int) -> int:
    return BASE + STEP * i


def frame_index(img: np.ndarray) -> int:
    return int(round((float(img.mean()) - BASE) / STEP))


def encode(
    path: Path,
    n: int = 30,
    *,
    width: int = 32,
    height: int = 32,
    codec: str = "libx264",
    gop: int | None = None,
    noise: bool = False,
    pts_ms: list[int] | None = None,
) -> Path:
    """Encode ``n`` grey frames (frame i has grey level ``grey(i)``); VFR when ``pts_ms``."""
    rng = np.random.default_rng(0)
    options = {"deadline": "realtime", "cpu-used": "8"} if "vpx" in codec else {}
    if codec == "libx264":  # byte-identical output run to run (see tvr.data.synthvtt.rendering)
        options = {"x264-params": "rc-lookahead=0:mbtree=0"}
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=FPS, options=options)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.codec_context.thread_count = 1  # threaded x264 output may vary with the machine's load
        if gop is not None:
            s.codec_context.gop_size = gop
        if pts_ms is not None:
            tb = Fraction(1, 1000)
            s.codec_context.time_base = tb
            s.time_base = tb
            if codec == "libx264":
                s.codec_context.max_b_frames = 0  # see note in test_vfr_selects_by_time
        for i in range(n):
            if noise:
                img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            else:
                img = np.full((height, width, 3), grey(i), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            c.mux(s.encode(frame))
        c.mux(s.encode())
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "mp4": encode(d / "a.mp4", 30, gop=5),
        "mp4_onegop": encode(d / "b.mp4", 45),
        "webm": encode(d / "a.webm", 30, codec="libvpx-vp9"),
        "short": encode(d / "short.mp4", 5),
        "wide": encode(d / "wide.mp4", 6, width=48, height=32),
        "noise": encode(d / "noise.mp4", 30, noise=True),
        "noise_webm": encode(d / "noise.webm", 30, codec="libvpx-vp9", noise=True),
    }


def expected_indices(n: int, num: int, start: float = 0.0, end: float | None = None) -> list[int]:
    end = n / FPS if end is None else end
    centres = start + (np.arange(num) + 0.5) * (end - start) / num
    return [int(math.floor(t * FPS + 1e-9)) for t in centres]


# ------------------------------------------------------------------------------------------
# Sampling
# ------------------------------------------------------------------------------------------


def test_segment_centres() -> None:
    np.testing.assert_allclose(segment_centres(0.0, 2.0, 4), [0.25, 0.75, 1.25, 1.75])
    with pytest.raises(ValueError, match="greater than start"):
        segment_centres(1.0, 1.0, 3)


@pytest.mark.parametrize("method", ["seek", "decode", "auto"])
@pytest.mark.parametrize("kind", ["mp4", "mp4_onegop", "webm"])
def test_uniform_sampling_picks_segment_centres(clips, kind: str, method: str) -> None:
    n = 45 if kind == "mp4_onegop" else 30
    out = read_frames(clips[kind], 8, method=method)
    want = expected_indices(n, 8)
    assert [frame_index(f) for f in out.frames] == want
    np.testing.assert_allclose(out.timestamps, np.array(want) / FPS, atol=1e-3)
    assert out.frames.dtype == np.uint8 and out.frames.shape == (8, 32, 32, 3)


@pytest.mark.parametrize("method", ["seek", "decode"])
def test_window_sampling(clips, method: str) -> None:
    out = read_frames(clips["mp4"], 4, start=0.5, end=1.0, method=method)
    assert [frame_index(f) for f in out.frames] == [8, 10, 12, 14]
    # An end past the clip is clamped to its duration (2 s).
    out = read_frames(clips["mp4"], 4, start=1.0, end=60.0, method=method)
    assert [frame_index(f) for f in out.frames] == expected_indices(30, 4, 1.0, 2.0)


@pytest.mark.parametrize("kind", ["mp4", "mp4_onegop", "webm"])
def test_seek_equals_decode(clips, kind: str) -> None:
    for num, start, end in [(7, None, None), (5, 0.3, 1.7), (12, 0.2, None), (40, None, None)]:
        a = read_frames(clips[kind], num, start=start, end=end, method="seek")
        b = read_frames(clips[kind], num, start=start, end=end, method="decode")
        assert (a.method, b.method) == ("seek", "decode")
        np.testing.assert_array_equal(a.frames, b.frames)
        np.testing.assert_array_equal(a.timestamps, b.timestamps)


def test_probe_and_auto_choice(clips, tmp_path) -> None:
    mp4, webm = probe_video(clips["mp4"]), probe_video(clips["webm"])
    assert mp4.indexed and mp4.num_frames == 30 and mp4.duration == pytest.approx(2.0)
    # webm: no frame count, no stream duration; the duration comes from the DURATION tag.
    assert not webm.indexed and webm.num_frames is None
    assert webm.duration == pytest.approx(2.0, abs=0.05)
    assert read_frames(clips["webm"], 4, method="auto").method == "decode"
    assert read_frames(clips["mp4"], 12, method="auto").method == "decode"  # 30 < 4 * 12
    long_mp4 = encode(tmp_path / "long.mp4", 48, width=16, height=16, gop=10)
    assert read_frames(long_mp4, 4, method="auto").method == "seek"


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_vfr_selects_by_time(tmp_path, suffix: str) -> None:
    pts = [0, 100, 150, 500, 520, 540, 900, 1000, 1300, 1400]
    codec = "libx264" if suffix == ".mp4" else "libvpx-vp9"
    # (x264 B-frames make the mp4 muxer under-report a VFR stream's duration, so the test
    # clip has none; sampling itself never relies on frame indices.)
    path = encode(tmp_path / f"vfr{suffix}", len(pts), codec=codec, pts_ms=pts)
    duration = probe_video(path).duration
    assert duration is not None
    times = np.array(pts) / 1000.0
    centres = segment_centres(0.0, duration, 8)
    picked = [int(np.searchsorted(times, t + 1e-9, side="right")) - 1 for t in centres]
    distinct = sorted(set(picked))
    for method in ("seek", "decode"):
        out = read_frames(path, 8, method=method)
        assert [frame_index(f) for f in out.frames] == distinct
        np.testing.assert_allclose(out.timestamps, times[distinct], atol=1e-3)
    # By time, only 5 distinct frames are on screen at the 8 centres (an index-based sampler
    # would take 8 different frames of the 10).
    assert distinct == [0, 2, 5, 7, 8]
    video, mask, stamps = FrameSampler(8, 16)(path)
    assert mask.tolist() == [1] * 5 + [0] * 3
    assert np.isnan(stamps[5:]).all() and not np.isnan(stamps[:5]).any()


def test_short_clip_is_zero_padded_with_mask(clips) -> None:
    sampler = FrameSampler(8, 16)
    video, mask, stamps = sampler(clips["short"])
    assert video.shape == (8, 3, 16, 16) and video.dtype == torch.float32
    assert mask.dtype == torch.long and mask.tolist() == [1] * 5 + [0] * 3
    assert torch.count_nonzero(video[5:]) == 0  # padding = zeros after normalisation
    raw = sampler.read_uint8(clips["short"])
    assert [frame_index(f) for f in raw.frames] == [0, 1, 2, 3, 4]  # each real frame once
    np.testing.assert_allclose(stamps[:5], np.arange(5) / FPS, atol=1e-3)
    assert np.isnan(stamps[5:]).all()


# ------------------------------------------------------------------------------------------
# Pixels
# ------------------------------------------------------------------------------------------


def test_resize_center_crop_geometry() -> None:
    img = np.zeros((40, 80, 3), dtype=np.uint8)
    img[:, :40] = (255, 0, 0)
    img[:, 40:] = (0, 0, 255)
    out = resize_center_crop(img, 20)  # -> 20 x 40, crop columns 10..29
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8
    assert (out[:, :8, 0] > 240).all() and (out[:, :8, 2] < 15).all()
    assert (out[:, 12:, 2] > 240).all() and (out[:, 12:, 0] < 15).all()
    # Short side already at size: a pure centre crop with offset round((w - size) / 2).
    ramp = np.tile(np.arange(30, dtype=np.uint8)[None, :, None], (20, 1, 3))
    np.testing.assert_array_equal(resize_center_crop(ramp, 20)[0, :, 0], np.arange(5, 25))
    tall = resize_center_crop(np.zeros((90, 30, 3), np.uint8), 10)
    assert tall.shape == (10, 10, 3)
    with pytest.raises(ValueError, match="uint8"):
        resize_center_crop(np.zeros((4, 4, 3), np.float32), 2)


def test_normalize_values() -> None:
    frames = np.zeros((2, 2, 2, 3), dtype=np.uint8)
    frames[1] = 255
    out = normalize_frames(frames)
    assert out.shape == (2, 3, 2, 2) and out.dtype == torch.float32
    mean, std = torch.tensor(CLIP_MEAN), torch.tensor(CLIP_STD)
    torch.testing.assert_close(out[0, :, 0, 0], -mean / std)
    torch.testing.assert_close(out[1, :, 1, 1], (1 - mean) / std)


def test_sampler_end_to_end_pixels(clips) -> None:
    video, mask, _ = FrameSampler(3, 16)(clips["wide"])  # 48x32 -> resize 24x16 -> crop 16
    assert video.shape == (3, 3, 16, 16) and mask.tolist() == [1, 1, 1]
    raw = read_frames(clips["wide"], 3, size=16)
    level = np.array([grey(frame_index(f)) for f in raw.frames], dtype=np.float32) / 255.0
    want = (torch.tensor(level)[:, None] - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    torch.testing.assert_close(video.mean(dim=(2, 3)), want, atol=0.05, rtol=0)
    native = read_frames(clips["wide"], 2)
    assert native.frames.shape == (2, 32, 48, 3)  # size=None keeps the decoded resolution


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------


def _truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def _faststart(src: Path, dst: Path) -> Path:
    with av.open(str(src)) as i, av.open(str(dst), "w", options={"movflags": "faststart"}) as o:
        si = i.streams.video[0]
        so = o.add_stream_from_template(si)
        for packet in i.demux(si):
            if packet.dts is None:
                continue
            packet.stream = so
            o.mux(packet)
    return dst


def _corrupt_middle(src: Path, dst: Path) -> Path:
    """Random bytes over the middle of the media data (20 % of the file from 35 %, the index at
    the end intact): wide enough to hit NAL length prefixes whatever the encoder's layout, which
    a 200-byte patch inside one slice's payload did not always do (error concealment)."""
    data = bytearray(src.read_bytes())
    off, size = int(len(data) * 0.35), int(len(data) * 0.2)
    data[off : off + size] = np.random.default_rng(1).integers(0, 256, size, np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD_CASES = {
    "missing": (lambda c, d: d / "missing.mp4", "does not exist"),
    "empty": (lambda c, d: _write(d / "empty.mp4", b""), "empty"),
    # fixed bytes: FFmpeg's probe takes about 1 in 300 random 4 kB files for a container (of
    # audio), which then has no video stream; either way the error names the file
    "garbage": (lambda c, d: _write(d / "junk.mp4", np.random.default_rng(0).bytes(4000)),
                "cannot open container|has no video stream"),
    "truncated_mp4": (
        lambda c, d: _truncate(c["noise"], d / "trunc.mp4", 0.5),
        "cannot open container",  # moov at the end is gone
    ),
    "truncated_faststart_mp4": (
        lambda c, d: _truncate(_faststart(c["noise"], d / "fs.mp4"), d / "trunc_fs.mp4", 0.6),
        "decoding failed|truncated",
    ),
    "truncated_webm": (
        lambda c, d: _truncate(c["noise_webm"], d / "trunc.webm", 0.5),
        "truncated",  # decodes short without any FFmpeg error
    ),
    "corrupt_mp4": (
        lambda c, d: _corrupt_middle(c["noise"], d / "corrupt.mp4"),
        "decoding failed",
    ),
}


@pytest.mark.parametrize("method", ["seek", "decode", "keyframe"])
@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_files_raise_naming_the_path(clips, tmp_path, case: str, method: str) -> None:
    make, reason = BAD_CASES[case]
    path = make(clips, tmp_path)
    with pytest.raises(VideoDecodeError, match=reason) as info:
        read_frames(path, 8, method=method)
    assert info.value.path == path
    assert str(path) in str(info.value)
    assert isinstance(info.value, RuntimeError)
    # Also through the sampler (what datasets call).
    with pytest.raises(VideoDecodeError, match=reason):
        FrameSampler(8, 16, method=method)(path)


def test_window_outside_clip_and_bad_arguments(clips) -> None:
    with pytest.raises(VideoDecodeError, match="beyond the clip's duration"):
        read_frames(clips["mp4"], 4, start=5.0)
    with pytest.raises(ValueError, match="must be greater than start"):
        read_frames(clips["mp4"], 4, start=1.0, end=0.5)
    with pytest.raises(ValueError, match="unknown decode method"):
        read_frames(clips["mp4"], 4, method="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_frames"):
        FrameSampler(0, 16)


def test_decode_error_pickles() -> None:
    err = pickle.loads(pickle.dumps(VideoDecodeError("/x/y.mp4", "file is empty (0 bytes)")))
    assert err.path == Path("/x/y.mp4") and err.reason == "file is empty (0 bytes)"
    assert "/x/y.mp4" in str(err) and "empty" in str(err)


# ------------------------------------------------------------------------------------------
# Cache
# ------------------------------------------------------------------------------------------


def test_cache_hit_and_invalidation(tmp_path, caplog) -> None:
    clip = encode(tmp_path / "c.mp4", 20)
    cache = tmp_path / "cache"
    sampler = FrameSampler(4, 16, cache_dir=cache)
    v1, m1, t1 = sampler(clip, 0.2, 1.2)
    v2, m2, t2 = sampler(clip, 0.2, 1.2)
    assert (sampler.cache_misses, sampler.cache_hits) == (1, 1)
    assert torch.equal(v1, v2) and torch.equal(m1, m2)
    np.testing.assert_array_equal(t1, t2)
    entries = list(cache.rglob("*.npz"))
    assert len(entries) == 1
    assert not list(cache.rglob("*.tmp"))  # atomic write left no temporary file
    with np.load(entries[0], allow_pickle=False) as data:
        assert data["frames"].dtype == np.uint8 and data["frames"].shape == (4, 16, 16, 3)

    # A different window is a different entry.
    sampler(clip, 0.0, 1.2)
    assert sampler.cache_misses == 2

    # Rewriting the file (new content, new mtime/size) invalidates the entry.
    encode(clip, 20, noise=True)
    st = clip.stat()
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    v3, _, _ = sampler(clip, 0.2, 1.2)
    assert sampler.cache_misses == 3
    assert not torch.equal(v1, v3)
    np.testing.assert_array_equal(
        read_frames(clip, 4, size=16, start=0.2, end=1.2).frames,
        sampler.read_uint8(clip, 0.2, 1.2).frames,
    )

    # A damaged entry is ignored (with a warning) and rewritten.
    for entry in cache.rglob("*.npz"):
        entry.write_bytes(b"not an npz")
    with caplog.at_level(logging.WARNING, logger="tvr.data.video"):
        v4, _, _ = sampler(clip, 0.2, 1.2)
    assert torch.equal(v3, v4)
    assert "unreadable frame-cache entry" in caplog.text


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_a_hole_in_the_timestamps_is_a_decode_error(tmp_path, suffix: str) -> None:
    """Frames 0-11 at 15 fps, then 2.3 s with no frame, then frames 12-23: what a stream that
    lost packets mid-file decodes to. It must not pass as a clip with 6 of 8 frames."""
    step = 1000 // FPS
    pts = [i * step for i in range(12)] + [11 * step + 2300 + i * step for i in range(12)]
    codec = "libx264" if suffix == ".mp4" else "libvpx-vp9"
    path = encode(tmp_path / f"hole{suffix}", len(pts), codec=codec, pts_ms=pts)
    with pytest.raises(VideoDecodeError, match=r"frames jump from 0\.726 s to 3\.026 s") as exc:
        read_frames(path, 8, method="decode")
    assert exc.value.path == path
    with pytest.raises(VideoDecodeError, match="missing mid-stream"):
        FrameSampler(8, 16)(path)  # auto: decodes this short clip


def test_vp9_webm_corrupted_mid_stream_raises(tmp_path) -> None:
    src = encode(tmp_path / "long.webm", 120, codec="libvpx-vp9", noise=True, gop=15)
    data = bytearray(src.read_bytes())
    off = len(data) // 2
    data[off : off + 2000] = np.random.default_rng(1).integers(0, 256, 2000, np.uint8).tobytes()
    bad = _write(tmp_path / "corrupt.webm", bytes(data))
    with pytest.raises(VideoDecodeError, match="missing mid-stream"):
        read_frames(bad, 8, method="decode")
    assert len(read_frames(src, 8, method="decode").timestamps) == 8  # the intact file is fine


# ------------------------------------------------------------------------------------------
# Keyframe-snapped sampling and decoder threads
# ------------------------------------------------------------------------------------------


def keyframe_indices(path: Path) -> list[int]:
    """Indices of the frames the decoder flags as keyframes (grey clips: index = colour)."""
    with av.open(str(path)) as c:
        return [frame_index(f.to_ndarray(format="rgb24")) for f in c.decode(video=0) if f.key_frame]


def expected_snapped(path: Path, n: int, num: int, start: float = 0.0, end: float | None = None):
    """Per segment: the keyframe nearest its centre inside it, else the exact centre frame."""
    end = n / FPS if end is None else end
    keys = keyframe_indices(path)
    edges = start + np.arange(num + 1) * (end - start) / num
    exact = expected_indices(n, num, start, end)
    out = []
    for i in range(num):
        centre = (edges[i] + edges[i + 1]) / 2
        inside = [k for k in keys if edges[i] - 1e-6 <= k / FPS < edges[i + 1] - 1e-6]
        out.append(min(inside, key=lambda k: abs(k / FPS - centre)) if inside else exact[i])
    return out, keys


@pytest.mark.parametrize("kind", ["mp4", "mp4_onegop", "webm"])
@pytest.mark.parametrize("window", [(8, None, None), (5, 0.3, 1.7), (12, 0.2, None)])
def test_keyframe_mode_snaps_to_the_nearest_keyframe_in_each_segment(clips, kind, window) -> None:
    num, start, end = window
    n = 45 if kind == "mp4_onegop" else 30
    want, keys = expected_snapped(clips[kind], n, num, start or 0.0, end)
    out = read_frames(clips[kind], num, start=start, end=end, method="keyframe")
    got = [frame_index(f) for f in out.frames]
    assert got == want
    # the recorded times are the frames' own, not the segment centres
    np.testing.assert_allclose(out.timestamps, np.array(want) / FPS, atol=1e-3)
    snapped = [i for i in want if i in keys]
    if kind == "mp4":  # a keyframe every 5 frames (the others have one, at frame 0)
        assert len(snapped) >= 2
    assert out.method == ("keyframe" if snapped else "seek")  # no keyframe: exact seeking


def test_keyframe_mode_falls_back_to_exact_seeking_without_keyframes(clips) -> None:
    """mp4_onegop's only keyframe is frame 0: a window from 1 s holds none."""
    assert keyframe_indices(clips["mp4_onegop"])[0] == 0
    assert all(k < 15 for k in keyframe_indices(clips["mp4_onegop"]))
    out = read_frames(clips["mp4_onegop"], 5, start=1.0, method="keyframe")
    exact = read_frames(clips["mp4_onegop"], 5, start=1.0, method="seek")
    assert out.method == "seek"
    np.testing.assert_array_equal(out.frames, exact.frames)
    np.testing.assert_array_equal(out.timestamps, exact.timestamps)


@pytest.mark.parametrize("method", ["seek", "decode", "keyframe"])
def test_decoder_threads_never_change_the_frames(clips, method: str) -> None:
    ref = read_frames(clips["noise"], 7, method=method)
    for thread_type in ("AUTO", "FRAME", "SLICE", "NONE"):
        out = read_frames(clips["noise"], 7, method=method, thread_type=thread_type)
        np.testing.assert_array_equal(out.frames, ref.frames)
        np.testing.assert_array_equal(out.timestamps, ref.timestamps)


def test_sampling_options_name_the_config_key(clips) -> None:
    from tvr.config import ExperimentConfig
    from tvr.data.video import sampling_options

    assert sampling_options("keyframe", "") == ("keyframe", None)
    assert sampling_options("seek", "SLICE") == ("seek", "SLICE")
    with pytest.raises(ValueError, match=r"data\.frame_sampling='fast'.*keyframe"):
        sampling_options("fast", "")
    with pytest.raises(ValueError, match=r"data\.decode_threads='4'.*SLICE"):
        sampling_options("auto", "4")
    with pytest.raises(ValueError, match="thread_type 'many'"):
        read_frames(clips["mp4"], 4, thread_type="many")  # type: ignore[arg-type]
    cfg = ExperimentConfig()
    cfg.data.frame_sampling, cfg.data.decode_threads = "keyframe", "AUTO"
    sampler = FrameSampler.from_config(cfg.data)
    assert (sampler.method, sampler.thread_type) == ("keyframe", "AUTO")
    assert FrameSampler.from_config(ExperimentConfig().data).method == "auto"  # default


def test_keyframe_frames_are_cached_apart_from_exact_ones(clips, tmp_path) -> None:
    cache = tmp_path / "cache"
    exact = FrameSampler(5, 16, method="seek", cache_dir=cache)
    snapped = FrameSampler(5, 16, method="keyframe", cache_dir=cache)
    exact(clips["mp4"])
    _, _, times = snapped(clips["mp4"])
    assert snapped.cache_misses == 1 and snapped.cache_hits == 0
    np.testing.assert_array_equal(
        times, read_frames(clips["mp4"], 5, size=16, method="keyframe").timestamps
    )
    snapped(clips["mp4"])
    assert snapped.cache_hits == 1
    decode = FrameSampler(5, 16, method="decode", cache_dir=cache)
    decode(clips["mp4"])
    assert decode.cache_hits == 1  # the exact modes share entries: their frames are identical


def test_keyframe_mode_takes_the_keyframe_nearest_the_centre(tmp_path) -> None:
    """Keyframes every 2 frames, 10-frame segments: several per segment, the nearest wins."""
    path = encode(tmp_path / "dense.mp4", 30, gop=2)
    want, keys = expected_snapped(path, 30, 3)
    assert sum(1 for k in keys if k < 10) >= 3
    out = read_frames(path, 3, method="keyframe")
    assert [frame_index(f) for f in out.frames] == want
    assert all(abs(i - c) <= 1 for i, c in zip(want, expected_indices(30, 3), strict=True))
