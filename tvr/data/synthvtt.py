"""SynthVTT: a procedurally generated text-video retrieval benchmark (``spec/synthvtt.md``).

A video is a plain background with 2-4 **events** one after another; an event is one shape of
one colour doing one action, ``(colour, shape, action)``, over a contiguous block of frames.
Captions describe an ordered subset of the events. Videos come in **families** (a base event
list and siblings one edit away), so a split is full of partially relevant hard negatives, and
every caption carries its ground truth: the events it mentions and every video of its split it
truly matches.

The dataset is written in the MSR-VTT layout (so the MSR-VTT source reads it unchanged), plus
``synthvtt_meta.json`` with the ground truth::

    python -m tvr.data.synthvtt --out data/synthvtt [--seed 0 --train 1500 --val 500 --test 500
                                                     --size 64 --fps 8 --background-captions]

Everything is deterministic from the seed: the plan (events, layouts, captions) is drawn in the
main process from per-purpose random streams, and videos are rendered from the rounded numbers
stored in the meta file, so the meta file alone reproduces every frame (:func:`render_video`).

Conventions of ``synthvtt_meta.json``:

- ``start_frame`` is inclusive and ``end_frame`` exclusive (``range(start_frame, end_frame)``).
- Geometry is in frame units: ``x`` (left to right) and ``y`` (top to bottom) are the shape's
  centre as fractions of the frame side; ``r`` is its half-extent (the circle's radius; every
  shape fits the square ``[x - r, x + r] x [y - r, y + r]``). At frame ``f`` of an event
  ``x = x0 + dx * (f - start_frame)``, likewise ``y`` with ``dy`` and ``r`` with ``dr``
  (:func:`frame_states`).
- Edits name event indices: for ``colour``/``shape``/``action`` the edited event (same index in
  base and sibling), for ``swap`` the two swapped events, for ``drop`` the index *in the base* of
  the dropped event, for ``add`` the index *in the sibling* of the inserted event; ``none`` for
  the family base.
- A caption matches a video when every mentioned event occurs in the video in the mentioned
  order (a subsequence, gaps allowed), and the background too when the caption names it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import av
import numpy as np
from tqdm import tqdm

from tvr.data.records import SourceError

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "1.0"

META_FILE = "synthvtt_meta.json"
DATA_FILE = "MSRVTT_data.json"
TRAIN_CSV = "MSRVTT_train.9k.csv"
TEST_CSV = "MSRVTT_JSFUSION_test.csv"
VAL_CSV = "val.csv"
README_FILE = "README.md"
VIDEO_DIR = "videos"
ANNOTATION_FILES: tuple[str, ...] = (
    DATA_FILE,
    TRAIN_CSV,
    TEST_CSV,
    VAL_CSV,
    META_FILE,
    README_FILE,
)

# --- vocabulary -------------------------------------------------------------------------------

# Saturated, far-apart colours (also in chroma, which yuv420p halves in resolution).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 25),
    "green": (30, 190, 40),
    "blue": (30, 90, 245),
    "yellow": (245, 225, 20),
    "purple": (150, 40, 200),
    "orange": (255, 140, 0),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
ACTIONS: tuple[str, ...] = (
    "moves left",
    "moves right",
    "moves up",
    "moves down",
    "grows",
    "shrinks",
)
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
    "white": (255, 255, 255),
    "dark blue": (15, 20, 75),
}
SPLITS: tuple[str, ...] = ("train", "val", "test")
MSRVTT_SPLIT: dict[str, str] = {"train": "train", "val": "validate", "test": "test"}
EDIT_TYPES: tuple[str, ...] = ("none", "colour", "shape", "action", "swap", "drop", "add")
# Drop and add siblings are contained in (or contain) their base, so no caption could single out
# both within a split; held-out splits use the other edits only (the spec's "regenerate" rule).
HELDOUT_EDITS: tuple[str, ...] = ("colour", "shape", "action", "swap")
TRAIN_EDITS: tuple[str, ...] = ("colour", "shape", "action", "swap", "drop", "add")

EventType = tuple[str, str, str]  # (colour, shape, action)
EVENT_TYPES: tuple[EventType, ...] = tuple(
    (c, s, a) for c in COLOURS for s in SHAPES for a in ACTIONS
)

# --- captions ---------------------------------------------------------------------------------

ACTION_PHRASES: dict[str, tuple[str, ...]] = {
    "moves left": (
        "moves left",
        "moves to the left",
        "slides to the left",
        "travels left",
        "goes left",
    ),
    "moves right": (
        "moves right",
        "moves to the right",
        "slides to the right",
        "travels right",
        "goes right",
    ),
    "moves up": ("moves up", "rises", "slides up", "travels upward", "goes up"),
    "moves down": ("moves down", "falls", "slides down", "travels downward", "goes down"),
    "grows": ("grows", "gets bigger", "expands", "grows larger"),
    "shrinks": ("shrinks", "gets smaller", "contracts", "shrinks away"),
}
CONNECTIVES: tuple[str, ...] = ("then", "after that", "and then", "followed by")
ADJECTIVES: tuple[str, ...] = ("small", "bright", "solid")
TRAIN_CAPTIONS_PER_VIDEO = 5
_P_ARTICLE_THE = 0.3
_P_ADJECTIVE = 0.25
_P_FIRST = 0.2
_P_BACKGROUND = 0.5

# --- timeline and geometry --------------------------------------------------------------------

EVENTS_PER_VIDEO = (2, 4)  # inclusive bounds
EVENT_FRAMES = (6, 12)
VIDEO_FRAMES = (24, 40)
GAP_FRAMES = (0, 3)  # between two events
EDGE_FRAMES = (0, 2)  # before the first and after the last event
FAMILY_SIZE = (3, 5)  # default; `family_size` (--family-size) makes families larger (harder)
FAMILY_SIZE_MAX = 12
_MARGIN = 0.02
_MOVE_RADIUS = (0.10, 0.16)
_MOVE_DISTANCE = (0.30, 0.50)
_SMALL_RADIUS = (0.07, 0.09)
_LARGE_RADIUS = (0.21, 0.26)

# --- encoding ---------------------------------------------------------------------------------

CODEC = "libx264"
PRESET = "veryfast"
CRF = 18
# x264's lookahead and macroblock tree made run-to-run differences on these tiny frames (same
# input, same process, threads=1); without them the output is byte-identical, at ~25 % more size.
X264_PARAMS = "rc-lookahead=0:mbtree=0"

_MAX_FAMILY_TRIES = 2000
_MAX_SIBLING_TRIES = 50
_MAX_LAYOUT_TRIES = 10000


# ============================================================================ pure helpers


def _event_type(event: Sequence[str] | Mapping[str, Any]) -> EventType:
    """``(colour, shape, action)`` of an event given as a triple or a mapping."""
    if isinstance(event, Mapping):
        return (event["colour"], event["shape"], event["action"])
    colour, shape, action = event
    return (colour, shape, action)


def _is_subsequence(needle: Sequence[EventType], haystack: Sequence[EventType]) -> bool:
    it = iter(haystack)
    return all(any(x == y for y in it) for x in needle)


def caption_matches(
    mentioned_events: Sequence[Sequence[str] | Mapping[str, Any]],
    video_events: Sequence[Sequence[str] | Mapping[str, Any]],
    *,
    background: str | None = None,
    video_background: str | None = None,
) -> bool:
    """Whether a caption mentioning ``mentioned_events`` (in order) matches a video.

    Events are ``(colour, shape, action)`` triples or mappings with those keys. A caption
    matches when all its events occur in the video in that order (other events may come in
    between), and, when it names a ``background``, the video's background is that one.

    Raises:
        ValueError: when ``background`` is given without ``video_background``.
    """
    if background is not None:
        if video_background is None:
            raise ValueError("caption_matches: background given but video_background is None")
        if background != video_background:
            return False
    needle = [_event_type(e) for e in mentioned_events]
    haystack = [_event_type(e) for e in video_events]
    return _is_subsequence(needle, haystack)


def frame_states(video: Mapping[str, Any]) -> list[dict[str, Any] | None]:
    """Per-frame shape state of one video of the meta file (``meta["videos"][video_id]``).

    Returns:
        A list of ``n_frames`` entries: ``None`` for a frame outside every event, else a dict
        with ``event`` (index), ``colour``, ``shape``, ``action``, ``x``, ``y`` (centre, in
        fractions of the frame side) and ``r`` (half-extent, same unit).
    """
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


def render_video(video: Mapping[str, Any], size: int) -> np.ndarray:
    """Render one video of the meta file to RGB frames, exactly as the generator encodes it.

    Shapes:
        returns ``[n_frames, size, size, 3]`` uint8.
    """
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


# ============================================================================ meta file


def load_meta(root: str | Path) -> dict[str, Any]:
    """Load and validate ``<root>/synthvtt_meta.json``.

    Raises:
        FileNotFoundError: when the file is absent.
        SourceError: when the file is not valid JSON or breaks the format; the message names
            the file, the key and what was expected.
    """
    path = Path(root) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: SynthVTT meta file not found (generate with python -m tvr.data.synthvtt)"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SourceError(path, f"line {e.lineno}", f"invalid JSON: {e.msg}") from e
    validate_meta(meta, path)
    return meta


def _need(cond: bool, path: Path, where: str, problem: str) -> None:
    if not cond:
        raise SourceError(path, where, problem)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def validate_meta(meta: Any, path: str | Path = META_FILE) -> None:
    """Check the structure of a loaded meta file; see :func:`load_meta`.

    Raises:
        SourceError: naming the file, the key and what was expected.
    """
    path = Path(path)
    _need(isinstance(meta, dict), path, "", f"expected a JSON object, got {type(meta).__name__}")
    for key in ("generator", "version", "params", "videos", "captions"):
        _need(key in meta, path, key, "missing key")
    _need(
        meta["generator"] == "synthvtt",
        path,
        "generator",
        f"expected 'synthvtt', got {meta['generator']!r}",
    )
    params = meta["params"]
    _need(isinstance(params, dict), path, "params", "expected an object")
    for key in ("seed", "n_train", "n_val", "n_test", "size", "fps"):
        _need(
            _is_int(params.get(key)),
            path,
            f"params.{key}",
            f"expected an integer, got {params.get(key)!r}",
        )
    _need(
        isinstance(params.get("background_captions"), bool),
        path,
        "params.background_captions",
        f"expected a boolean, got {params.get('background_captions')!r}",
    )
    if "family_size" in params:
        try:
            _family_bounds(params["family_size"])
        except ValueError as e:
            _need(False, path, "params.family_size", str(e))
    videos = meta["videos"]
    _need(isinstance(videos, dict), path, "videos", "expected an object keyed by video_id")
    for vid, v in videos.items():
        _validate_video(v, path, f"videos.{vid}")
    counts = {s: sum(1 for v in videos.values() if v["split"] == s) for s in SPLITS}
    for s in SPLITS:
        _need(
            counts[s] == params[f"n_{s}"],
            path,
            "videos",
            f"params.n_{s} is {params[f'n_{s}']} but {counts[s]} videos have split {s!r}",
        )
    captions = meta["captions"]
    _need(isinstance(captions, dict), path, "captions", "expected an object keyed by sen_id")
    for sid, c in captions.items():
        where = f"captions.{sid}"
        _need(isinstance(c, dict), path, where, "expected an object")
        for key in ("video_id", "split", "events", "background", "relevant"):
            _need(key in c, path, f"{where}.{key}", "missing key")
        _need(
            c["video_id"] in videos, path, f"{where}.video_id", f"unknown video {c['video_id']!r}"
        )
        v = videos[c["video_id"]]
        _need(
            c["split"] == v["split"],
            path,
            f"{where}.split",
            f"expected {v['split']!r} (the video's split), got {c['split']!r}",
        )
        ev = c["events"]
        _need(
            isinstance(ev, list) and len(ev) > 0 and all(_is_int(i) for i in ev),
            path,
            f"{where}.events",
            f"expected a non-empty list of event indices, got {ev!r}",
        )
        _need(
            all(0 <= i < len(v["events"]) for i in ev) and all(a < b for a, b in zip(ev, ev[1:])),
            path,
            f"{where}.events",
            f"expected increasing indices in [0, {len(v['events'])}), got {ev!r}",
        )
        _need(isinstance(c["background"], bool), path, f"{where}.background", "expected a boolean")
        rel = c["relevant"]
        _need(
            isinstance(rel, list) and c["video_id"] in rel,
            path,
            f"{where}.relevant",
            f"expected a list of video ids containing {c['video_id']!r}",
        )
        for r in rel:
            _need(
                r in videos and videos[r]["split"] == c["split"],
                path,
                f"{where}.relevant",
                f"{r!r} is not a video of split {c['split']!r}",
            )


def _validate_video(v: Any, path: Path, where: str) -> None:
    _need(isinstance(v, dict), path, where, "expected an object")
    for key in ("split", "family", "edit", "background", "n_frames", "events"):
        _need(key in v, path, f"{where}.{key}", "missing key")
    _need(
        v["split"] in SPLITS,
        path,
        f"{where}.split",
        f"expected one of {SPLITS}, got {v['split']!r}",
    )
    _need(
        _is_int(v["family"]), path, f"{where}.family", f"expected an integer, got {v['family']!r}"
    )
    edit = v["edit"]
    _need(
        isinstance(edit, dict)
        and edit.get("type") in EDIT_TYPES
        and isinstance(edit.get("events"), list),
        path,
        f"{where}.edit",
        f"expected {{'type': one of {EDIT_TYPES}, 'events': [...]}}, got {edit!r}",
    )
    _need(
        v["background"] in BACKGROUNDS,
        path,
        f"{where}.background",
        f"expected one of {tuple(BACKGROUNDS)}, got {v['background']!r}",
    )
    n = v["n_frames"]
    _need(
        _is_int(n) and n > 0, path, f"{where}.n_frames", f"expected a positive integer, got {n!r}"
    )
    events = v["events"]
    _need(
        isinstance(events, list) and len(events) > 0,
        path,
        f"{where}.events",
        "expected a non-empty list",
    )
    prev_end = 0
    for i, ev in enumerate(events):
        ew = f"{where}.events[{i}]"
        _need(isinstance(ev, dict), path, ew, "expected an object")
        for key, allowed in (("colour", tuple(COLOURS)), ("shape", SHAPES), ("action", ACTIONS)):
            _need(
                ev.get(key) in allowed,
                path,
                f"{ew}.{key}",
                f"expected one of {allowed}, got {ev.get(key)!r}",
            )
        for key in ("x", "y", "r", "dx", "dy", "dr"):
            _need(
                _is_num(ev.get(key)), path, f"{ew}.{key}", f"expected a number, got {ev.get(key)!r}"
            )
        s, e = ev.get("start_frame"), ev.get("end_frame")
        _need(
            _is_int(s) and _is_int(e) and prev_end <= s < e <= n,
            path,
            f"{ew}.start_frame",
            f"expected {prev_end} <= start_frame < end_frame <= n_frames={n} (end exclusive), got {s!r}, {e!r}",
        )
        prev_end = e


# ============================================================================ planning


@dataclass(frozen=True)
class Edit:
    """How a family member differs from the family base (see the module docstring)."""

    type: str = "none"
    events: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "events": list(self.events)}


@dataclass
class _Video:
    video_id: str
    split: str
    family: int
    edit: Edit
    events: tuple[EventType, ...]
    background: str
    n_frames: int
    layout: list[dict[str, Any]]  # per event: frames and geometry

    def to_json(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "family": self.family,
            "edit": self.edit.to_json(),
            "background": self.background,
            "n_frames": self.n_frames,
            "events": [
                {"colour": c, "shape": s, "action": a, **geo}
                for (c, s, a), geo in zip(self.events, self.layout)
            ],
        }


class _SplitIndex:
    """Event lists of one split with an inverted index from event type to videos."""

    def __init__(self) -> None:
        self.lists: list[tuple[EventType, ...]] = []
        self.backgrounds: list[str | None] = []
        self._postings: dict[EventType, set[int]] = {}

    def add(self, events: Sequence[EventType], background: str | None = None) -> int:
        i = len(self.lists)
        self.lists.append(tuple(events))
        self.backgrounds.append(background)
        for e in events:
            self._postings.setdefault(e, set()).add(i)
        return i

    def matching(self, mentioned: Sequence[EventType], background: str | None = None) -> list[int]:
        """Videos containing ``mentioned`` in order (and with ``background`` when given)."""
        sets = sorted((self._postings.get(e, set()) for e in mentioned), key=len)
        cand = set(sets[0]).intersection(*sets[1:]) if sets else set(range(len(self.lists)))
        return sorted(
            i
            for i in cand
            if (background is None or self.backgrounds[i] == background)
            and _is_subsequence(mentioned, self.lists[i])
        )

    def conflicts(self, events: Sequence[EventType]) -> bool:
        """Whether ``events`` contains, or is contained in, an indexed list (as subsequences)."""
        if self.matching(events):
            return True
        cand = set().union(*(self._postings.get(e, set()) for e in events))
        return any(_is_subsequence(self.lists[i], events) for i in cand)


def _random_events(rng: np.random.Generator) -> tuple[EventType, ...]:
    n = int(rng.integers(EVENTS_PER_VIDEO[0], EVENTS_PER_VIDEO[1] + 1))
    return tuple(EVENT_TYPES[int(i)] for i in rng.choice(len(EVENT_TYPES), size=n, replace=False))


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _apply_edit(
    rng: np.random.Generator, base: tuple[EventType, ...], kind: str
) -> tuple[tuple[EventType, ...], Edit]:
    n = len(base)
    ev = list(base)
    if kind in ("colour", "shape", "action"):
        i = int(rng.integers(n))
        slot = ("colour", "shape", "action").index(kind)
        vocab = (tuple(COLOURS), SHAPES, ACTIONS)[slot]
        options = []
        for value in vocab:
            cand = list(ev[i])
            cand[slot] = value
            if tuple(cand) not in ev:
                options.append(tuple(cand))
        ev[i] = _pick(rng, options)
        return tuple(ev), Edit(kind, (i,))
    if kind == "swap":
        i, j = sorted(int(k) for k in rng.choice(n, size=2, replace=False))
        ev[i], ev[j] = ev[j], ev[i]
        return tuple(ev), Edit("swap", (i, j))
    if kind == "drop":
        i = int(rng.integers(n))
        del ev[i]
        return tuple(ev), Edit("drop", (i,))
    if kind == "add":
        p = int(rng.integers(n + 1))
        new = _pick(rng, [e for e in EVENT_TYPES if e not in ev])
        ev.insert(p, new)
        return tuple(ev), Edit("add", (p,))
    raise ValueError(f"unknown edit {kind!r}")


def _applicable_edits(base: Sequence[EventType], heldout: bool) -> list[str]:
    kinds = HELDOUT_EDITS if heldout else TRAIN_EDITS
    out = []
    for k in kinds:
        if k == "drop" and len(base) <= EVENTS_PER_VIDEO[0]:
            continue
        if k == "add" and len(base) >= EVENTS_PER_VIDEO[1]:
            continue
        out.append(k)
    return out


def _related(a: Sequence[EventType], b: Sequence[EventType]) -> bool:
    return _is_subsequence(a, b) or _is_subsequence(b, a)


def _draw_family(
    rng: np.random.Generator, size: int, heldout: bool, index: _SplitIndex
) -> list[tuple[tuple[EventType, ...], Edit]]:
    """A base event list and ``size - 1`` siblings, one edit each.

    In held-out splits no member may contain, or be contained in, another video of the split
    (family included), so each has a caption that identifies it uniquely.
    """
    for _ in range(_MAX_FAMILY_TRIES):
        base = _random_events(rng)
        if heldout and index.conflicts(base):
            continue
        members: list[tuple[tuple[EventType, ...], Edit]] = [(base, Edit())]
        kinds = _applicable_edits(base, heldout)
        while len(members) < size:
            for _ in range(_MAX_SIBLING_TRIES):
                sib, edit = _apply_edit(rng, base, _pick(rng, kinds))
                if any(sib == m for m, _ in members):
                    continue
                if heldout and (any(_related(sib, m) for m, _ in members) or index.conflicts(sib)):
                    continue
                members.append((sib, edit))
                break
            else:
                break
        if len(members) == size:
            return members
    raise RuntimeError(
        f"could not draw a family of {size} whose members are all identifiable in a split of "
        f"{len(index.lists)} videos after {_MAX_FAMILY_TRIES} tries; use a smaller split"
    )


def _family_size(rng: np.random.Generator, remaining: int, bounds: tuple[int, int]) -> int:
    lo, hi = bounds
    options = [
        k
        for k in range(lo, hi + 1)
        if k <= remaining and (remaining - k == 0 or remaining - k >= lo)
    ]
    # no size leaves a whole family behind (e.g. 15 videos left with families of 8-12): the
    # largest allowed now, a smaller family at the end
    return _pick(rng, options) if options else min(remaining, hi)


def _layout(
    rng: np.random.Generator, events: Sequence[EventType]
) -> tuple[int, list[dict[str, Any]]]:
    """Frame ranges and per-event geometry; returns ``(n_frames, per-event dicts)``."""
    n = len(events)
    for _ in range(_MAX_LAYOUT_TRIES):
        lengths = rng.integers(EVENT_FRAMES[0], EVENT_FRAMES[1] + 1, size=n)
        gaps = rng.integers(GAP_FRAMES[0], GAP_FRAMES[1] + 1, size=n - 1)
        lead, tail = (int(v) for v in rng.integers(EDGE_FRAMES[0], EDGE_FRAMES[1] + 1, size=2))
        total = lead + int(lengths.sum()) + int(gaps.sum()) + tail
        if VIDEO_FRAMES[0] <= total <= VIDEO_FRAMES[1]:
            break
    else:  # pragma: no cover - the constants make this practically impossible
        raise RuntimeError(f"no layout of {n} events fits {VIDEO_FRAMES} frames")
    out = []
    start = lead
    for i, (_, _, action) in enumerate(events):
        length = int(lengths[i])
        geo = _geometry(rng, action, length)
        out.append({"start_frame": start, "end_frame": start + length, **geo})
        start += length + (int(gaps[i]) if i < n - 1 else 0)
    return total, out


def _geometry(rng: np.random.Generator, action: str, length: int) -> dict[str, float]:
    m = _MARGIN
    steps = length - 1
    if action in ("grows", "shrinks"):
        small = rng.uniform(*_SMALL_RADIUS)
        large = rng.uniform(*_LARGE_RADIUS)
        x, y = rng.uniform(large + m, 1 - large - m, size=2)
        r0, r1 = (small, large) if action == "grows" else (large, small)
        dx = dy = 0.0
        dr = (r1 - r0) / steps
    else:
        r0 = rng.uniform(*_MOVE_RADIUS)
        dist = rng.uniform(*_MOVE_DISTANCE)
        along = rng.uniform(r0 + m, 1 - r0 - m - dist)  # start for a positive direction
        across = rng.uniform(r0 + m, 1 - r0 - m)
        step = dist / steps
        dr = 0.0
        if action == "moves right":
            x, y, dx, dy = along, across, step, 0.0
        elif action == "moves left":
            x, y, dx, dy = 1 - along, across, -step, 0.0
        elif action == "moves down":
            x, y, dx, dy = across, along, 0.0, step
        else:  # moves up
            x, y, dx, dy = across, 1 - along, 0.0, -step
    return {
        "x": round(float(x), 4),
        "y": round(float(y), 4),
        "r": round(float(r0), 4),
        "dx": round(float(dx), 5),
        "dy": round(float(dy), 5),
        "dr": round(float(dr), 5),
    }


def _plan_split(
    rng: np.random.Generator,
    split: str,
    n_videos: int,
    first_id: int,
    first_family: int,
    family_size: tuple[int, int] = FAMILY_SIZE,
) -> list[_Video]:
    heldout = split != "train"
    index = _SplitIndex()
    videos: list[_Video] = []
    family = first_family
    while len(videos) < n_videos:
        size = _family_size(rng, n_videos - len(videos), family_size)
        for events, edit in _draw_family(rng, size, heldout, index):
            index.add(events)
            background = _pick(rng, tuple(BACKGROUNDS))
            n_frames, layout = _layout(rng, events)
            vid = f"video{first_id + len(videos)}"
            videos.append(_Video(vid, split, family, edit, events, background, n_frames, layout))
        family += 1
    return videos


# ----------------------------------------------------------------------------- captions


@dataclass(frozen=True)
class _Caption:
    sen_id: int
    video_id: str
    split: str
    text: str
    events: tuple[int, ...]
    background: bool
    relevant: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "split": self.split,
            "events": list(self.events),
            "background": self.background,
            "relevant": list(self.relevant),
        }


def _noun_phrase(rng: np.random.Generator, colour: str, shape: str) -> str:
    words = [colour, shape]
    if rng.random() < _P_ADJECTIVE:
        words.insert(0, _pick(rng, ADJECTIVES))
    if rng.random() < _P_ARTICLE_THE:
        article = "the"
    else:
        article = "an" if words[0][0] in "aeiou" else "a"
    return " ".join([article, *words])


def caption_text(
    rng: np.random.Generator, events: Sequence[EventType], background: str | None = None
) -> str:
    """One caption for ``events`` in the given order (synonyms, connectives, adjectives).

    ``background`` names the video's background in the caption when given.
    """
    if not events:
        raise ValueError("caption_text: a caption mentions at least one event")
    text = ""
    for k, (colour, shape, action) in enumerate(events):
        noun = _noun_phrase(rng, colour, shape)
        verb = _pick(rng, ACTION_PHRASES[action])
        if k == 0:
            first = len(events) > 1 and rng.random() < _P_FIRST
            text = f"{'first ' if first else ''}{noun} {verb}"
            continue
        conn = "then" if (k == 1 and text.startswith("first ")) else _pick(rng, CONNECTIVES)
        if conn == "followed by":
            text += f", followed by {noun} that {verb}"
        elif conn == "and then":
            text += f" and then {noun} {verb}"
        else:
            text += f", {conn} {noun} {verb}"
    if background is not None:
        if rng.random() < 0.5:
            text = f"on a {background} background, {text}"
        else:
            text = f"{text} on a {background} background"
    return text


def _heldout_subset(
    rng: np.random.Generator, video: _Video, own: int, index: _SplitIndex
) -> tuple[int, ...]:
    """A random smallest ordered subset of events that matches no other video of the split.

    Sizes below two are raised to two ("prefer 2 events").
    """
    n = len(video.events)
    unique_by_size: dict[int, list[tuple[int, ...]]] = {}
    for k in range(1, n + 1):
        subsets = [
            sub
            for sub in _combinations(n, k)
            if index.matching([video.events[i] for i in sub]) == [own]
        ]
        if subsets:
            unique_by_size[k] = subsets
    if not unique_by_size:
        raise RuntimeError(
            f"{video.video_id}: no caption identifies it within split {video.split!r}"
        )
    k = max(min(unique_by_size), min(2, n))
    while k not in unique_by_size:  # supersets of unique subsets are unique, so this is rare
        k += 1
    return _pick(rng, unique_by_size[k])


def _combinations(n: int, k: int) -> list[tuple[int, ...]]:
    return list(combinations(range(n), k))


def _make_captions(
    rng: np.random.Generator,
    videos: Sequence[_Video],
    first_sen_id: int,
    background_captions: bool,
) -> list[_Caption]:
    index = _SplitIndex()
    for v in videos:
        index.add(v.events, v.background)
    captions: list[_Caption] = []
    for own, v in enumerate(videos):
        n = len(v.events)
        if v.split == "train":
            subsets = []
            for _ in range(TRAIN_CAPTIONS_PER_VIDEO):
                k = int(rng.integers(1, n + 1))
                subsets.append(tuple(sorted(int(i) for i in rng.choice(n, size=k, replace=False))))
        else:
            subsets = [_heldout_subset(rng, v, own, index)]
        for sub in subsets:
            name_bg = background_captions and rng.random() < _P_BACKGROUND
            mentioned = [v.events[i] for i in sub]
            bg = v.background if name_bg else None
            text = caption_text(rng, mentioned, bg)
            relevant = tuple(videos[i].video_id for i in index.matching(mentioned, bg))
            captions.append(
                _Caption(
                    first_sen_id + len(captions), v.video_id, v.split, text, sub, name_bg, relevant
                )
            )
    return captions


# ============================================================================ writing


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate` produced (or found already in place).

    Attributes:
        out: the dataset folder.
        params: the generation parameters (as in ``synthvtt_meta.json``).
        videos: number of videos per split.
        captions: number of captions per split.
        frames: total number of frames over all videos.
        seconds: wall-clock time of the call.
        skipped: True when a complete dataset with the same parameters was already there.
    """

    out: Path
    params: dict[str, Any]
    videos: dict[str, int]
    captions: dict[str, int]
    frames: int
    seconds: float
    skipped: bool


def _params(
    seed: int,
    n_train: int,
    n_val: int,
    n_test: int,
    size: int,
    fps: int,
    background_captions: bool,
    family_size: Sequence[int] = FAMILY_SIZE,
) -> dict[str, Any]:
    checks = (
        ("seed", seed, 0, 2**63 - 1),
        ("n_train", n_train, 1, 10**6),
        ("n_val", n_val, 1, 10**6),
        ("n_test", n_test, 1, 10**6),
        ("size", size, 16, 1024),
        ("fps", fps, 1, 120),
    )
    for name, value, lo, hi in checks:
        if not _is_int(value) or not lo <= value <= hi:
            raise ValueError(f"SynthVTT {name}: expected an integer in [{lo}, {hi}], got {value!r}")
    if size % 2:
        raise ValueError(f"SynthVTT size: expected an even number of pixels (yuv420p), got {size}")
    if not isinstance(background_captions, bool):
        raise ValueError(
            f"SynthVTT background_captions: expected a boolean, got {background_captions!r}"
        )
    fam = _family_bounds(family_size)
    params = {
        "seed": seed,
        "n_train": n_train,
        "n_val": n_val,
        "n_test": n_test,
        "size": size,
        "fps": fps,
        "background_captions": background_captions,
    }
    if fam != FAMILY_SIZE:  # recorded only when it differs: default datasets stay byte-identical
        params["family_size"] = list(fam)
    return params


def _family_bounds(value: Any) -> tuple[int, int]:
    """``family_size`` as ``(lo, hi)``, checked: 2 <= lo <= hi <= FAMILY_SIZE_MAX."""
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(_is_int(v) for v in value)
        and 2 <= value[0] <= value[1] <= FAMILY_SIZE_MAX
    )
    if not ok:
        raise ValueError(
            f"SynthVTT family_size: expected two integers lo <= hi in [2, {FAMILY_SIZE_MAX}], "
            f"got {value!r}"
        )
    return int(value[0]), int(value[1])


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n"


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _annotation_texts(
    params: dict[str, Any], videos: Sequence[_Video], captions: Sequence[_Caption]
) -> dict[str, str]:
    fps = params["fps"]
    data = {
        "info": {
            "contributor": "SynthVTT generator (tvr.data.synthvtt)",
            "description": "procedurally generated text-video retrieval benchmark in the MSR-VTT layout",
            "version": GENERATOR_VERSION,
            "seed": params["seed"],
        },
        "videos": [
            {
                "id": int(v.video_id[len("video") :]),
                "video_id": v.video_id,
                "category": list(BACKGROUNDS).index(v.background),
                "url": f"synthvtt://seed{params['seed']}/{v.video_id}",
                "start time": 0.0,
                "end time": round(v.n_frames / fps, 4),
                "split": MSRVTT_SPLIT[v.split],
            }
            for v in videos
        ],
        "sentences": [
            {"sen_id": c.sen_id, "video_id": c.video_id, "caption": c.text} for c in captions
        ],
    }
    train_csv = _csv_text(["video_id"], ([v.video_id] for v in videos if v.split == "train"))

    def retrieval_csv(split: str) -> str:
        rows = [c for c in captions if c.split == split]
        return _csv_text(
            ["key", "vid_key", "video_id", "sentence"],
            (
                [f"ret{i}", "msr" + c.video_id[len("video") :], c.video_id, c.text]
                for i, c in enumerate(rows)
            ),
        )

    meta = {
        "generator": "synthvtt",
        "version": GENERATOR_VERSION,
        "params": params,
        "codec": {
            "name": CODEC,
            "pix_fmt": "yuv420p",
            "preset": PRESET,
            "crf": CRF,
            "x264_params": X264_PARAMS,
        },
        "conventions": {
            "frames": "start_frame inclusive, end_frame exclusive; frame f of an event is t = f - start_frame",
            "geometry": "x, y: shape centre as fractions of the frame side (x right, y down); r: half-extent; "
            "value at frame t is x + dx * t, y + dy * t, r + dr * t",
            "edit": "event indices: colour/shape/action/swap in both lists; drop: index in the base; "
            "add: index in this video",
            "match": "a caption matches a video when its events occur in the video in order "
            "(and the background, when the caption names it)",
        },
        "vocabulary": {
            "colours": {k: list(v) for k, v in COLOURS.items()},
            "shapes": list(SHAPES),
            "actions": list(ACTIONS),
            "backgrounds": {k: list(v) for k, v in BACKGROUNDS.items()},
        },
        "videos": {v.video_id: v.to_json() for v in videos},
        "captions": {str(c.sen_id): c.to_json() for c in captions},
    }
    return {
        DATA_FILE: _dumps(data),
        TRAIN_CSV: train_csv,
        TEST_CSV: retrieval_csv("test"),
        VAL_CSV: retrieval_csv("val"),
        META_FILE: _dumps(meta),
        README_FILE: _readme(params, videos, captions),
    }


def _readme(params: dict[str, Any], videos: Sequence[_Video], captions: Sequence[_Caption]) -> str:
    nv = {s: sum(v.split == s for v in videos) for s in SPLITS}
    nc = {s: sum(c.split == s for c in captions) for s in SPLITS}
    rows = "\n".join(f"| {s} | {nv[s]} | {nc[s]} |" for s in SPLITS)
    bg = " --background-captions" if params["background_captions"] else ""
    fam = params.get("family_size", FAMILY_SIZE)
    if "family_size" in params:
        bg += f" --family-size {fam[0]} {fam[1]}"
    return f"""# SynthVTT

A procedurally generated text-video retrieval benchmark, written by `tvr.data.synthvtt`
(generator version {GENERATOR_VERSION}). Each video shows 2-4 events, one coloured shape doing one
action each, on a plain background; captions describe an ordered subset of the events. Videos
come in families of {fam[0]}-{fam[1]} (one edit apart), never split across splits;
each test and val caption matches exactly one video of its split.

Seed {params["seed"]}, {params["size"]}x{params["size"]} px, {params["fps"]} fps, H.264 yuv420p mp4.

| split | videos | captions |
|---|---|---|
{rows}

Regenerate (byte-identical annotations, identical frames):

    python -m tvr.data.synthvtt --out <dir> --seed {params["seed"]} --train {params["n_train"]} \\
        --val {params["n_val"]} --test {params["n_test"]} --size {params["size"]} --fps {params["fps"]}{bg}

Files (MSR-VTT layout):

- `videos/video{{N}}.mp4`
- `{DATA_FILE}`: `videos[]` (split train / validate / test) and `sentences[]`
- `{TRAIN_CSV}`: train video ids; `{TEST_CSV}` and `{VAL_CSV}`: one caption per video
  (`key,vid_key,video_id,sentence`)
- `{META_FILE}`: ground truth. Per video: split, family, edit relative to the family base,
  background, `n_frames`, events with `start_frame` (inclusive) / `end_frame` (exclusive) and
  geometry (centre `x`, `y` and half-extent `r` in fractions of the frame side at the event's
  first frame, plus per-frame increments `dx`, `dy`, `dr`). Per caption (keyed by `sen_id`):
  the indices of the events it mentions, whether it names the background, and `relevant`, every
  video of its split it matches. `tvr.data.synthvtt.load_meta`, `frame_states` and
  `render_video` read it.
"""


def _encode_job(job: tuple[dict[str, Any], int, int, str]) -> int:
    video, size, fps, path = job
    frames = render_video(video, size)
    write_mp4(path, frames, fps)
    return int(frames.shape[0])


def _is_complete(out: Path, params: dict[str, Any]) -> bool:
    try:
        meta = load_meta(out)
    except (FileNotFoundError, SourceError):
        return False
    if meta["version"] != GENERATOR_VERSION or meta["params"] != params:
        return False
    if not all((out / name).is_file() for name in ANNOTATION_FILES):
        return False
    return all((out / VIDEO_DIR / f"{vid}.mp4").is_file() for vid in meta["videos"])


def _check_target(out: Path, force: bool) -> None:
    """Raise when ``out`` holds something that generation must not replace."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(
            f"{out}: exists and is not a folder; expected a SynthVTT dataset folder"
        )
    if not any(out.iterdir()):
        return
    if not (out / META_FILE).is_file():
        raise FileExistsError(
            f"{out}: not empty and holds no {META_FILE}, so it is not a SynthVTT dataset; "
            "refusing to replace it (choose another --out)"
        )
    if not force:
        raise FileExistsError(
            f"{out}: holds a SynthVTT dataset with other parameters (or an incomplete one); "
            "pass force=True (--force) to replace it"
        )


def _summary(
    out: Path, params: dict[str, Any], meta: Mapping[str, Any], seconds: float, skipped: bool
) -> GenerationSummary:
    vids = meta["videos"]
    caps = meta["captions"]
    return GenerationSummary(
        out=out,
        params=dict(params),
        videos={s: sum(v["split"] == s for v in vids.values()) for s in SPLITS},
        captions={s: sum(c["split"] == s for c in caps.values()) for s in SPLITS},
        frames=sum(v["n_frames"] for v in vids.values()),
        seconds=seconds,
        skipped=skipped,
    )


def plan(
    *,
    seed: int = 0,
    n_train: int = 1500,
    n_val: int = 500,
    n_test: int = 500,
    size: int = 64,
    fps: int = 8,
    background_captions: bool = False,
    family_size: Sequence[int] = FAMILY_SIZE,
) -> dict[str, str]:
    """Draw the whole dataset except the video files; returns ``{file name: text}``.

    Pure and deterministic: the same arguments give byte-identical texts. The videos are
    rendered from the returned ``synthvtt_meta.json`` (see :func:`render_video`).
    """
    params = _params(seed, n_train, n_val, n_test, size, fps, background_captions, family_size)
    family = _family_bounds(params.get("family_size", FAMILY_SIZE))
    videos: list[_Video] = []
    captions: list[_Caption] = []
    for k, split in enumerate(SPLITS):
        first_family = videos[-1].family + 1 if videos else 0
        split_videos = _plan_split(
            np.random.default_rng([seed, k]),
            split,
            params[f"n_{split}"],
            len(videos),
            first_family,
            family,
        )
        captions += _make_captions(
            np.random.default_rng([seed, 100 + k]), split_videos, len(captions), background_captions
        )
        videos += split_videos
    return _annotation_texts(params, videos, captions)


def generate(
    out: str | Path,
    *,
    seed: int = 0,
    n_train: int = 1500,
    n_val: int = 500,
    n_test: int = 500,
    size: int = 64,
    fps: int = 8,
    background_captions: bool = False,
    family_size: Sequence[int] = FAMILY_SIZE,
    workers: int = 2,
    force: bool = False,
    progress: bool = True,
) -> GenerationSummary:
    """Generate a SynthVTT dataset into ``out`` (atomically).

    Everything is written into a temporary sibling folder that is renamed to ``out`` at the end,
    so an interrupted run never leaves a folder that looks complete. When ``out`` already holds a
    complete dataset with the same parameters and generator version, nothing is done.

    Args:
        out: dataset folder (created; its parent too).
        seed: random seed; the output is a deterministic function of all arguments but
            ``workers``, ``force`` and ``progress``.
        n_train, n_val, n_test: videos per split (at least 1 each).
        size: frame side in pixels (even, 16-1024).
        fps: frames per second of the mp4 files.
        background_captions: let captions name the background (half of them).
        family_size: ``(lo, hi)`` videos per family (one edit apart), default ``(3, 5)``;
            larger families put more one-edit siblings beside each true video (harder).
        workers: encoding processes (1 = in this process).
        force: replace an existing SynthVTT dataset with other parameters.
        progress: show a tqdm bar over videos.

    Raises:
        ValueError: for a bad parameter (names it and the valid range).
        FileExistsError: when ``out`` holds something else, or another SynthVTT dataset and
            ``force`` is False.
    """
    t0 = time.perf_counter()
    out = Path(out)
    params = _params(seed, n_train, n_val, n_test, size, fps, background_captions, family_size)
    if not _is_int(workers) or workers < 1:
        raise ValueError(f"SynthVTT workers: expected a positive integer, got {workers!r}")
    if _is_complete(out, params):
        logger.info(
            "%s already holds a complete SynthVTT dataset with these parameters; nothing to do", out
        )
        return _summary(out, params, load_meta(out), time.perf_counter() - t0, skipped=True)
    _check_target(out, force)

    texts = plan(
        **{
            k: params[k]
            for k in ("seed", "n_train", "n_val", "n_test", "size", "fps", "background_captions")
        },
        family_size=params.get("family_size", FAMILY_SIZE),
    )
    meta = json.loads(texts[META_FILE])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        (tmp / VIDEO_DIR).mkdir()
        jobs = [
            (v, size, fps, str(tmp / VIDEO_DIR / f"{vid}.mp4")) for vid, v in meta["videos"].items()
        ]
        _encode_all(jobs, workers, progress)
        for name, text in texts.items():
            (tmp / name).write_text(text, encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        _check_target(out, force)  # again: something may have appeared meanwhile
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary = _summary(out, params, meta, time.perf_counter() - t0, skipped=False)
    logger.info(
        "wrote SynthVTT to %s: videos %s, captions %s, %d frames in %.1f s",
        out,
        summary.videos,
        summary.captions,
        summary.frames,
        summary.seconds,
    )
    return summary


def _encode_all(
    jobs: list[tuple[dict[str, Any], int, int, str]], workers: int, progress: bool
) -> None:
    bar = tqdm(total=len(jobs), desc="SynthVTT videos", unit="video", disable=not progress)
    try:
        if workers == 1 or len(jobs) < 2 * workers:
            for job in jobs:
                _encode_job(job)
                bar.update()
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(workers) as pool:
                for _ in pool.imap(_encode_job, jobs, chunksize=16):
                    bar.update()
    finally:
        bar.close()


def _move_into_place(tmp: Path, out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / "dataset")
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)


# ============================================================================ CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tvr.data.synthvtt",
        description="Generate the SynthVTT benchmark in the MSR-VTT layout.",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("data/synthvtt"),
        help="dataset folder (default: data/synthvtt)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--train", type=int, default=1500, help="train videos (default: 1500)")
    p.add_argument("--val", type=int, default=500, help="val videos (default: 500)")
    p.add_argument("--test", type=int, default=500, help="test videos (default: 500)")
    p.add_argument("--size", type=int, default=64, help="frame side in pixels, even (default: 64)")
    p.add_argument("--fps", type=int, default=8, help="frames per second (default: 8)")
    p.add_argument(
        "--background-captions", action="store_true", help="let captions name the background"
    )
    p.add_argument(
        "--family-size",
        type=int,
        nargs=2,
        metavar=("LO", "HI"),
        default=list(FAMILY_SIZE),
        help=f"videos per family, one edit apart (default: {FAMILY_SIZE[0]} {FAMILY_SIZE[1]}; "
        "larger is harder)",
    )
    p.add_argument("--workers", type=int, default=2, help="encoding processes (default: 2)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing SynthVTT dataset with other parameters",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 also when the dataset was already there)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        summary = generate(
            args.out,
            seed=args.seed,
            n_train=args.train,
            n_val=args.val,
            n_test=args.test,
            size=args.size,
            fps=args.fps,
            background_captions=args.background_captions,
            family_size=tuple(args.family_size),
            workers=args.workers,
            force=args.force,
            progress=not args.quiet,
        )
    except (ValueError, FileExistsError) as e:
        logger.error("%s", e)
        return 1
    if summary.skipped:
        print(f"{summary.out}: already complete with these parameters; nothing to do")
    else:
        print(
            f"{summary.out}: {sum(summary.videos.values())} videos {summary.videos}, "
            f"{sum(summary.captions.values())} captions, {summary.seconds:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
