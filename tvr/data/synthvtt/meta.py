"""SynthVTT's files and its ground-truth file ``synthvtt_meta.json``: names, reader, validator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tvr.data.records import SourceError
from tvr.data.synthvtt.vocabulary import (
    ACTIONS,
    BACKGROUNDS,
    COLOURS,
    EDIT_TYPES,
    FAMILY_SIZE_MAX,
    SHAPES,
    SPLITS,
)

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
