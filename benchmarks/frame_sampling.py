"""Frame-sampling speed: seek-based vs full-decode sampling of T frames with PyAV.

Encodes 10 s, 224x224, 30 fps clips into a temporary folder (H.264 mp4 with a keyframe every
second, H.264 mp4 with the encoder's default GOP, VP9 webm), then times
:func:`tvr.data.video.read_frames` sampling 12 frames with ``method="seek"`` and
``method="decode"`` (median of several repetitions, after one warm-up call), checks that both
methods return identical frames, prints a table and writes the ``## Frame sampling`` section of
``benchmarks/RESULTS.md`` (other sections are left untouched).

Usage:
    python benchmarks/frame_sampling.py [--reps 7] [--frames 12] [--no-write]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from benchmarks.results import (  # noqa: E402
    add_results_args,
    load_note,
    timings_ms,
    update_section,
)
from tvr.data.video import (  # noqa: E402
    AUTO_SEEK_MIN_FRAMES_PER_SAMPLE,
    probe_video,
    read_frames,
)

logger = logging.getLogger(__name__)

SECTION = "## Frame sampling"
SECONDS, FPS, SIDE = 10, 30, 224


@dataclass(frozen=True)
class Clip:
    name: str  # row label
    file: str  # file name in the temp folder
    codec: str  # PyAV encoder name
    gop: int | None  # keyframe interval (None = encoder default)
    options: tuple[tuple[str, str], ...] = ()  # encoder options


CLIPS = (
    Clip("h264 mp4, keyframe every 1 s (g=30)", "h264_g30.mp4", "libx264", FPS),
    Clip("h264 mp4, default GOP", "h264_default.mp4", "libx264", None),
    Clip(
        "vp9 webm, default GOP",
        "vp9.webm",
        "libvpx-vp9",
        None,
        (("deadline", "realtime"), ("cpu-used", "8")),  # fast encode; decoding is what is timed
    ),
)


def _frames(n: int, side: int) -> list[np.ndarray]:
    """Synthetic moving content: a textured pattern scrolling and changing colour."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (side // 8, side // 4, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)  # [side, 2 * side, 3] blocks
    out = []
    for i in range(n):
        img = texture[:, (3 * i) % side : (3 * i) % side + side].copy()
        img[..., i % 3] = (img[..., i % 3].astype(np.uint16) + 4 * i).astype(np.uint8)
        out.append(img)
    return out


def encode(path: Path, clip: Clip, frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(clip.codec, rate=FPS, options=dict(clip.options))
        stream.width, stream.height = SIDE, SIDE
        stream.pix_fmt = "yuv420p"
        if clip.gop is not None:
            stream.codec_context.gop_size = clip.gop
        for img in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())


def time_method(path: Path, num_frames: int, method: str, reps: int) -> tuple[float, np.ndarray]:
    """Median wall time (ms) of ``reps`` calls, after one warm-up call; returns the frames too."""
    times, result = timings_ms(
        lambda _: read_frames(path, num_frames, size=SIDE, method=method), range(reps)
    )
    return statistics.median(times), result.frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions per method")
    parser.add_argument("--frames", type=int, default=12, help="frames sampled per clip (T)")
    add_results_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    load = os.getloadavg()[0]
    rows = []
    frames = _frames(SECONDS * FPS, SIDE)
    with tempfile.TemporaryDirectory(prefix="tvr-bench-") as tmp:
        for clip in CLIPS:
            path = Path(tmp) / clip.file
            t0 = time.perf_counter()
            encode(path, clip, frames)
            logger.info("encoded %s in %.1f s", clip.file, time.perf_counter() - t0)
            info = probe_video(path)
            seek_ms, seek_frames = time_method(path, args.frames, "seek", args.reps)
            dec_ms, dec_frames = time_method(path, args.frames, "decode", args.reps)
            auto = read_frames(path, args.frames, size=SIDE, method="auto").method
            same = seek_frames.shape == dec_frames.shape and np.array_equal(seek_frames, dec_frames)
            rows.append((clip.name, seek_ms, dec_ms, dec_ms / seek_ms, auto, same, info))

    header = (
        f"| clip ({SECONDS} s, {SIDE}x{SIDE}, {FPS} fps) | seek (ms) | full decode (ms) "
        "| decode / seek | auto picks | identical frames |"
    )
    table = [header, "|---|---:|---:|---:|---|---|"]
    for name, seek_ms, dec_ms, ratio, auto, same, _ in rows:
        table.append(
            f"| {name} | {seek_ms:.1f} | {dec_ms:.1f} | {ratio:.2f}x | {auto} | "
            f"{'yes' if same else 'NO'} |"
        )
    print("\n".join(table))

    if not args.no_write:
        body = "\n".join(
            [
                "Command: `python benchmarks/frame_sampling.py"
                f"{'' if args.reps == 7 else f' --reps {args.reps}'}"
                f"{'' if args.frames == 12 else f' --frames {args.frames}'}`",
                "",
                f"`tvr.data.video.read_frames`, {args.frames} frames at segment centres, "
                f"resized/cropped to {SIDE}; median of {args.reps} runs after a warm-up; "
                f"PyAV {av.__version__}, Python {platform.python_version()}, "
                f"{platform.machine()}, on {time.strftime('%Y-%m-%d')}.",
                "",
                *table,
                "",
                '"decode / seek" > 1 means seeking is faster. Seek mode seeks to the keyframe '
                "before each target and decodes forward to it, but keeps decoding forward "
                "instead when no keyframe lies between the decoder and the target, so it never "
                "decodes much more than one full pass; its gain is bounded by the frames it can "
                "skip (about half a GOP is decoded per target). `auto` seeks only on indexed "
                "mp4/mov files whose window holds at least "
                f"{AUTO_SEEK_MIN_FRAMES_PER_SAMPLE} frames per sampled frame.",
                "",
                load_note(load),
            ]
        )
        update_section(args.results, SECTION, body)
        logger.info("updated %s (%s)", args.results, SECTION)
    return 0 if all(row[5] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
