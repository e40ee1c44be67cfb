"""The one reader of ``synthvtt_meta.json``: JSON in, :class:`~.meta.SynthVTTMeta` out.

:func:`read_meta` reads a dataset's meta file, :func:`parse_meta` an already loaded object;
:func:`read_split_meta` aligns the meta with the rows of one split (captions matched by text
through ``MSRVTT_data.json``). Every error is a :class:`~tvr.data.records.SourceError` naming
the file, the field (``videos.video2.events[1].colour``) and what was expected.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tvr.data.records import SourceError
from tvr.data.synthvtt.meta import (
    DATA_FILE,
    META_FILE,
    Edit,
    GenerationParams,
    MetaCaption,
    MetaEvent,
    MetaFieldError,
    MetaVideo,
    SplitMeta,
    SynthVTTMeta,
)

__all__ = ["load_meta", "parse_meta", "parse_params", "read_meta", "read_split_meta"]

_T = TypeVar("_T")

_PARAM_KEYS = ("seed", "n_train", "n_val", "n_test", "size", "fps", "background_captions")
_VIDEO_KEYS = ("split", "family", "edit", "background", "n_frames", "events")
_EVENT_KEYS = (
    "colour",
    "shape",
    "action",
    "start_frame",
    "end_frame",
    "x",
    "y",
    "r",
    "dx",
    "dy",
    "dr",
)
_CAPTION_KEYS = ("video_id", "split", "events", "background", "relevant")


def _stamp(path: Path) -> tuple[str, int, int]:
    """``(resolved path, st_mtime_ns, st_size)``: a parse cache key that changes with the file."""
    st = path.stat()
    return str(path.resolve()), int(st.st_mtime_ns), int(st.st_size)


def read_meta(root: str | Path) -> SynthVTTMeta:
    """Read and check ``<root>/synthvtt_meta.json``.

    One version of the file (path, mtime, size) is parsed once per process (the two most
    recent are kept: the base and DRGI runs of a split read the same file, ~3 s at 59,800
    captions); the result is shared, so treat it as read-only.

    Raises:
        FileNotFoundError: when the file is absent.
        SourceError: when the file is not valid JSON or breaks the format; the message names
            the file, the field and what was expected.
    """
    path = Path(root) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: SynthVTT meta file not found (generate with python -m tvr.data.synthvtt)"
        )
    return _read_meta(*_stamp(path))


@functools.lru_cache(maxsize=2)
def _read_meta(name: str, mtime_ns: int, size: int) -> SynthVTTMeta:
    path = Path(name)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SourceError(path, f"line {e.lineno}", f"invalid JSON: {e.msg}") from e
    return parse_meta(obj, path)


def parse_meta(obj: Any, path: str | Path = META_FILE) -> SynthVTTMeta:
    """Check a loaded meta object and build its typed form (``path`` names it in errors).

    Raises:
        SourceError: naming ``path``, the field and what was expected.
    """
    path = Path(path)
    _need(isinstance(obj, dict), path, "", f"expected a JSON object, got {type(obj).__name__}")
    for key in ("generator", "version", "params", "videos", "captions"):
        _need(key in obj, path, key, "missing key")
    _need(
        obj["generator"] == "synthvtt",
        path,
        "generator",
        f"expected 'synthvtt', got {obj['generator']!r}",
    )
    _need(
        isinstance(obj["version"], str),
        path,
        "version",
        f"expected a string, got {obj['version']!r}",
    )
    params = _build(path, "params", obj["params"], _PARAM_KEYS, _params)
    videos_obj = obj["videos"]
    _need(isinstance(videos_obj, dict), path, "videos", "expected an object keyed by video_id")
    videos = {
        vid: _build(path, f"videos.{vid}", v, _VIDEO_KEYS, lambda d, vid=vid: _video(vid, d))
        for vid, v in videos_obj.items()
    }
    captions_obj = obj["captions"]
    _need(isinstance(captions_obj, dict), path, "captions", "expected an object keyed by sen_id")
    captions: dict[int, MetaCaption] = {}
    for sid, c in captions_obj.items():
        _need(
            sid.isdigit() and str(int(sid)) == sid,
            path,
            f"captions.{sid}",
            "expected an integer sen_id as key",
        )
        captions[int(sid)] = _build(
            path, f"captions.{sid}", c, _CAPTION_KEYS, lambda d, sid=sid: _caption(int(sid), d)
        )
    extra = {}
    for key in ("codec", "conventions", "vocabulary"):
        if key in obj:
            _need(isinstance(obj[key], dict), path, key, "expected an object")
            extra[key] = obj[key]
    try:
        return SynthVTTMeta(obj["version"], params, videos, captions, **extra)
    except MetaFieldError as e:
        raise SourceError(path, e.field, e.problem) from None


def read_split_meta(
    root: str | Path,
    split: str,
    video_ids: Sequence[str],
    captions: Sequence[str],
    text_to_video: Any,
) -> SplitMeta:
    """The meta of ``root`` aligned with the rows of one split.

    A caption row is matched to the meta caption of its video with the same text in
    ``MSRVTT_data.json`` and the same split (duplicates taken in ``sen_id`` order).

    Args:
        root: the dataset folder.
        split: ``"train"``, ``"val"`` or ``"test"``.
        video_ids: ``[Nv]`` video id of each column.
        captions: ``[Nt]`` caption text of each row.
        text_to_video: ``[Nt]`` column of each row's video.

    Raises:
        FileNotFoundError: the meta file or ``MSRVTT_data.json`` is absent.
        SourceError: either file breaks the format, or a video id is not in the meta (the
            rows come from another dataset); names the file.
    """
    root = Path(root)
    meta = read_meta(root)
    missing = [vid for vid in video_ids if vid not in meta.videos]
    if missing:
        raise SourceError(
            root / META_FILE,
            "videos",
            f"no entry for videos {missing[:5]} of the split; the rows come from another dataset",
        )
    by_text = _sentence_ids(root)
    rows: list[MetaCaption | None] = []
    t2v = np.asarray(text_to_video).astype(np.int64)
    taken: dict[tuple[str, str], int] = {}  # sen_ids of a (video, text) used so far
    for text, col in zip(captions, t2v, strict=True):
        key = (video_ids[int(col)], text)
        ids = by_text.get(key, ())
        i = taken.get(key, 0)
        entry = None
        while i < len(ids):
            c = meta.captions.get(ids[i])
            i += 1
            if c is not None and c.split == split:
                entry = c
                break
        taken[key] = i
        rows.append(entry)
    return SplitMeta(
        params=meta.params,
        vocabulary=meta.vocabulary or {},
        videos=[meta.videos[vid] for vid in video_ids],
        captions=rows,
    )


def load_meta(root: str | Path) -> dict[str, Any]:
    """:func:`read_meta` as the plain JSON object (documented for users in docs/synthvtt.md and
    the dataset's README; the library itself reads the typed :func:`read_meta`)."""
    return read_meta(root).to_json()


# ---------------------------------------------------------------------------- helpers


def _need(cond: bool, path: Path, where: str, problem: str) -> None:
    if not cond:
        raise SourceError(path, where, problem)


def _build(path: Path, where: str, obj: Any, keys: Sequence[str], make: Callable[[dict], _T]) -> _T:
    """``make(obj)`` after checking ``obj`` is an object with ``keys``; errors named."""
    _need(isinstance(obj, dict), path, where, "expected an object")
    for key in keys:
        _need(key in obj, path, f"{where}.{key}", "missing key")
    try:
        return make(obj)
    except MetaFieldError as e:
        e = e.within(where)
        raise SourceError(path, e.field, e.problem) from None


def parse_params(obj: Any, path: str | Path = META_FILE) -> GenerationParams:
    """The meta's ``params`` object, checked (``path`` names the file in errors).

    Raises:
        SourceError: naming ``path``, the field and what was expected.
    """
    return _build(Path(path), "params", obj, _PARAM_KEYS, _params)


def _params(d: dict) -> GenerationParams:
    return GenerationParams(**{k: d[k] for k in _PARAM_KEYS}, family_size=d.get("family_size"),
                            test_captions=d.get("test_captions"))


def _as_tuple(value: Any, name: str) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise MetaFieldError(name, f"expected a list, got {value!r}")
    return tuple(value)


def _video(video_id: str, d: dict) -> MetaVideo:
    edit = d["edit"]
    if not isinstance(edit, dict) or "type" not in edit or not isinstance(edit.get("events"), list):
        raise MetaFieldError("edit", f"expected {{'type': ..., 'events': [...]}}, got {edit!r}")
    try:
        parsed_edit = Edit(edit["type"], tuple(edit["events"]))
    except MetaFieldError as e:
        raise e.within("edit") from None
    events = d["events"]
    if not isinstance(events, list) or not events:
        raise MetaFieldError("events", "expected a non-empty list")
    parsed = []
    for i, ev in enumerate(events):
        where = f"events[{i}]"
        if not isinstance(ev, dict):
            raise MetaFieldError(where, "expected an object")
        for key in _EVENT_KEYS:
            if key not in ev:
                raise MetaFieldError(f"{where}.{key}", "missing key")
        try:
            parsed.append(MetaEvent(**{k: ev[k] for k in _EVENT_KEYS}))
        except MetaFieldError as e:
            raise e.within(where) from None
    return MetaVideo(
        video_id,
        d["split"],
        d["family"],
        parsed_edit,
        d["background"],
        d["n_frames"],
        tuple(parsed),
    )


def _caption(sen_id: int, d: dict) -> MetaCaption:
    return MetaCaption(
        sen_id,
        d["video_id"],
        d["split"],
        _as_tuple(d["events"], "events"),
        d["background"],
        _as_tuple(d["relevant"], "relevant"),
    )


def _sentence_ids(root: Path) -> dict[tuple[str, str], tuple[int, ...]]:
    """``(video_id, caption text) -> (sen_id, ...)`` from ``MSRVTT_data.json`` (parsed once
    per file version and process, like :func:`read_meta`; shared, read-only)."""
    path = root / DATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: SynthVTT annotation file not found")
    return _read_sentence_ids(*_stamp(path))


@functools.lru_cache(maxsize=2)
def _read_sentence_ids(name: str, mtime_ns: int, size: int
                       ) -> dict[tuple[str, str], tuple[int, ...]]:
    path = Path(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SourceError(path, f"line {e.lineno}", f"invalid JSON: {e.msg}") from e
    sentences = data.get("sentences") if isinstance(data, dict) else None
    _need(isinstance(sentences, list), path, "sentences", "expected a list of sentences")
    out: dict[tuple[str, str], list[int]] = {}
    for i, s in enumerate(sentences):
        ok = (
            isinstance(s, dict)
            and isinstance(s.get("video_id"), str)
            and isinstance(s.get("caption"), str)
            and isinstance(s.get("sen_id"), int)
        )
        _need(
            ok,
            path,
            f"sentences[{i}]",
            f"expected {{'sen_id': int, 'video_id': str, 'caption': str}}, got {s!r}",
        )
        out.setdefault((s["video_id"], s["caption"]), []).append(s["sen_id"])
    return {key: tuple(ids) for key, ids in out.items()}
