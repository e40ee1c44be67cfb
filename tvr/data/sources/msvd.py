"""MSVD (data_and_metrics.md section 4): collaborative-experts split lists and raw captions.

- ``{train,val,test}_list.txt``: one video id per line (ids contain ``-`` and ``_`` and are
  never split).
- Captions: ``raw-captions.json`` (``dict[id] -> list[str]``) or ``raw-captions.pkl``
  (``dict[id] -> list[list[str]]`` of tokens, joined with single spaces). The pickle is read
  with :class:`~tvr.data.sources.safe_pickle.PlainDataUnpickler`, which refuses every global.
  When both files exist the JSON is used.
- Videos: ``videos/{id}.avi`` (or ``YouTubeClips/{id}.avi``).

Every caption is kept in every split, so test is multi-caption (section 11.5).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tvr.data.records import SourceError, VideoTextRecord
from tvr.data.sources._contract import COMMON_OPTIONS, Option, finish, start_load
from tvr.data.sources._layout import VideoLocator, under_root
from tvr.data.sources._readers import (
    expect_dict,
    expect_list,
    expect_text,
    json_key,
    read_json,
    read_split_list,
    records_for_listed_ids,
)
from tvr.data.sources.safe_pickle import load_plain_pickle
from tvr.registry import register

NAME = "msvd"
SPLITS: tuple[str, ...] = ("train", "val", "test")
CAPTION_FILES: tuple[str, ...] = ("raw-captions.json", "raw-captions.pkl")
VIDEO_DIRS: tuple[str, ...] = ("videos", "YouTubeClips")
VIDEO_EXTS: tuple[str, ...] = (".avi",)
OPTIONS: dict[str, Option] = {
    **COMMON_OPTIONS,
    "captions_file": Option(
        None,
        "caption file (.json or .pkl, relative to the root); default: "
        + " then ".join(CAPTION_FILES),
        types=(str, Path, type(None)),
    ),
}


def _caption_text(value: Any, path: Path, parts: tuple[str | int, ...]) -> str:
    """A caption given as a string or as a list of word tokens, as one stripped string."""
    if isinstance(value, list):
        tokens = [
            expect_text(t, path, (*parts, j), "a word token string") for j, t in enumerate(value)
        ]
        if not tokens:
            raise SourceError(path, json_key(*parts), "expected a caption, got an empty token list")
        return " ".join(tokens)
    return expect_text(value, path, parts, "a caption string or a list of word tokens")


def read_captions(path: Path) -> dict[str, list[str]]:
    """Captions per video id from ``raw-captions.json`` or ``raw-captions.pkl``.

    Raises:
        SourceError: missing or malformed file, an unsafe pickle, or a value that is not a list
            of captions (each a string or a list of token strings), naming the key.
    """
    if path.suffix == ".pkl":
        data = load_plain_pickle(path)
    else:
        data = read_json(path, "MSVD caption file")
    data = expect_dict(data, path, (), "an object mapping video id -> list of captions")
    out: dict[str, list[str]] = {}
    for vid, caps in data.items():
        if not isinstance(vid, str):
            raise SourceError(path, f"key {vid!r}", "expected video ids to be strings")
        caps = expect_list(caps, path, (vid,), "a list of captions")
        if not caps:
            raise SourceError(path, json_key(vid), "expected at least one caption, got none")
        out[vid] = [_caption_text(c, path, (vid, i)) for i, c in enumerate(caps)]
    return out


def _caption_path(root: Path, override: str | Path | None) -> Path:
    if override is not None:
        return under_root(root, override)
    for name in CAPTION_FILES:
        if (root / name).is_file():
            return root / name
    raise SourceError(
        root / CAPTION_FILES[0],
        "",
        f"MSVD caption file not found; expected {' or '.join(CAPTION_FILES)} in {root}",
    )


@register("source", NAME)
def load(root: str | Path, split: str, **options: Any) -> list[VideoTextRecord]:
    """Load one MSVD split.

    Args:
        root: dataset folder holding the lists, the caption file and the videos.
        split: ``train``, ``val`` or ``test``.
        **options: ``captions_file``, ``video_dir``, ``check_videos``, ``skip_missing_videos``.

    Returns:
        One record per listed video, in list order, with all of its captions.

    Raises:
        SourceOptionError: unknown split or option.
        SourceError: malformed or missing files, or a listed video without captions (naming
            the list file and line).
        MissingVideosError: with ``check_videos=True`` when video files are absent.
    """
    root, opts = start_load(NAME, root, split, options, OPTIONS, SPLITS)
    list_path, ids = read_split_list(root, split, "MSVD")
    cap_path = _caption_path(root, opts["captions_file"])
    captions = read_captions(cap_path)
    locator = VideoLocator(root, VIDEO_DIRS, VIDEO_EXTS, opts["video_dir"])
    records = records_for_listed_ids(
        list_path, ids, captions, locator.path, f"has no captions in {cap_path}"
    )
    return finish(NAME, split, records, opts, list_path)
