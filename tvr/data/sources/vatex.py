"""VATEX (data_and_metrics.md section 8): English captions on the HGR split.

- ``train_list.txt`` (25,991), ``val_list.txt`` (1,500), ``test_list.txt`` (1,500): one id per
  line, ``<youtube id>_<start6>_<end6>`` (YouTube ids may contain ``_``; ids are never split).
  The val and test lists are HGR's, carved from the official public validation set.
  CLIP2Video ships a different 1,500-video test list: the list used is logged by file name.
- English captions (10 per video), from the first file found of:

  1. ``ref_captions.json``: ``dict[id] -> list[str]`` (TS2-Net, TC-MGC);
  2. ``vatex_data.json``: ``dict[id] -> {"enCap": [...]}`` (CLIP2Video family);
  3. the official ``vatex_training_v1.0.json`` and/or ``vatex_validation_v1.0.json``: lists of
     ``{"videoID", "enCap", "chCap"}`` (all present ones are merged).

  Any of the three shapes is accepted in any of these files or in ``captions_file``.
- Videos: ``videos/{id}`` + ``.mp4``, ``.webm`` or ``.mkv``.

Every English caption is kept, so test is multi-caption (15,000 queries x 1,500 videos).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tvr.data.records import SourceError, VideoTextRecord
from tvr.data.sources._contract import COMMON_OPTIONS, Option, finish, start_load
from tvr.data.sources._layout import VideoLocator, under_root
from tvr.data.sources._readers import (
    expect_dict,
    expect_list,
    expect_text,
    get_key,
    get_text,
    json_key,
    read_json,
    read_split_list,
    records_for_listed_ids,
)
from tvr.registry import register

logger = logging.getLogger(__name__)

NAME = "vatex"
SPLITS: tuple[str, ...] = ("train", "val", "test")
# candidate caption sources, first match wins; a group's present files are merged
CAPTION_GROUPS: tuple[tuple[str, ...], ...] = (
    ("ref_captions.json",),
    ("vatex_data.json",),
    ("vatex_training_v1.0.json", "vatex_validation_v1.0.json"),
)
VIDEO_DIRS: tuple[str, ...] = ("videos",)
VIDEO_EXTS: tuple[str, ...] = (".mp4", ".webm", ".mkv")
OPTIONS: dict[str, Option] = {
    **COMMON_OPTIONS,
    "captions_file": Option(
        None,
        "caption JSON file, or a list of them to merge (relative to the root); default: "
        "ref_captions.json, vatex_data.json, or the official vatex_*_v1.0.json files",
        types=(str, Path, list, tuple, type(None)),
    ),
}


def _english(value: Any, path: Path, parts: tuple[str | int, ...]) -> list[str]:
    caps = expect_list(value, path, parts, "a list of English captions")
    if not caps:
        raise SourceError(path, json_key(*parts), "expected at least one English caption")
    return [expect_text(c, path, (*parts, i), "a caption string") for i, c in enumerate(caps)]


def read_captions(path: Path) -> dict[str, list[str]]:
    """English captions per video id from one VATEX caption file (any of the three shapes).

    Raises:
        SourceError: missing file, bad JSON, an unknown shape, a duplicate video id, or a
            malformed entry (naming the key).
    """
    data = read_json(path, "VATEX caption file")
    out: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for vid, value in data.items():
            if isinstance(value, dict):  # {"enCap": [...], ...}
                value = get_key(value, "enCap", path, (vid,), "a list of English captions")
                out[vid] = _english(value, path, (vid, "enCap"))
            else:
                out[vid] = _english(value, path, (vid,))
    elif isinstance(data, list):  # official: [{"videoID", "enCap", "chCap"}, ...]
        for i, item in enumerate(data):
            item = expect_dict(item, path, (i,), "an object with videoID and enCap")
            vid = get_text(item, "videoID", path, (i,), "a video id string")
            if vid in out:
                raise SourceError(path, json_key(i, "videoID"), f"duplicate video id {vid!r}")
            out[vid] = _english(
                get_key(item, "enCap", path, (i,), "a list of English captions"),
                path,
                (i, "enCap"),
            )
    else:
        raise SourceError(
            path,
            "top level",
            "expected an object (id -> captions or {enCap}) or a list of {videoID, enCap}",
        )
    return out


def _caption_paths(root: Path, override: str | Path | Sequence[str | Path] | None) -> list[Path]:
    if override is not None:
        items = [override] if isinstance(override, str | Path) else list(override)
        if not items:
            raise SourceError(root, "", "option captions_file is an empty list")
        return [under_root(root, p) for p in items]
    for group in CAPTION_GROUPS:
        present = [root / name for name in group if (root / name).is_file()]
        if present:
            return present
    names = " or ".join(" + ".join(g) for g in CAPTION_GROUPS)
    raise SourceError(root, "", f"no VATEX caption file found; expected {names}")


def merged_captions(paths: Sequence[Path]) -> dict[str, tuple[Path, list[str]]]:
    """Captions from several files, each id mapped to (file, captions); ids must not repeat."""
    out: dict[str, tuple[Path, list[str]]] = {}
    for path in paths:
        for vid, caps in read_captions(path).items():
            if vid in out:
                raise SourceError(
                    path, json_key(vid), f"video {vid!r} also has captions in {out[vid][0]}"
                )
            out[vid] = (path, caps)
    return out


@register("source", NAME)
def load(root: str | Path, split: str, **options: Any) -> list[VideoTextRecord]:
    """Load one VATEX split (HGR lists, English captions).

    Args:
        root: dataset folder holding the lists, the caption file(s) and ``videos/``.
        split: ``train``, ``val`` or ``test``.
        **options: ``captions_file``, ``video_dir``, ``check_videos``, ``skip_missing_videos``.

    Returns:
        One record per listed video, in list order, with all its English captions.

    Raises:
        SourceOptionError: unknown split or option.
        SourceError: malformed or missing files, or a listed video without captions (naming
            the list file and line).
        MissingVideosError: with ``check_videos=True`` when video files are absent.
    """
    root, opts = start_load(NAME, root, split, options, OPTIONS, SPLITS)
    list_path, ids = read_split_list(root, split, "VATEX")
    cap_paths = _caption_paths(root, opts["captions_file"])
    captions = {vid: caps for vid, (_, caps) in merged_captions(cap_paths).items()}
    locator = VideoLocator(root, VIDEO_DIRS, VIDEO_EXTS, opts["video_dir"])
    records = records_for_listed_ids(
        list_path,
        ids,
        captions,
        locator.path,
        f"has no English captions in {', '.join(map(str, cap_paths))}",
    )
    logger.info(
        "%s/%s: split list %s, captions from %s",
        NAME,
        split,
        list_path.name,
        ", ".join(p.name for p in cap_paths),
    )
    return finish(NAME, split, records, opts, list_path)
