"""DiDeMo (data_and_metrics.md section 7): paragraph-to-video retrieval.

- ``{train,val,test}_list.txt``: video file names, extension included (these are the ids).
- ``{train,val,test}_data.json``: a list of ``{"video", "description", "times", ...}``;
  ``times`` holds ``[start, end]`` 5-second-chunk indices from each annotator.
- Paragraph mode: one record per video whose caption is all its descriptions (JSON order,
  stripped) joined with single spaces, over the fixed window ``[0, 31]`` s (annotation covered
  the first 30 s).
- Videos: ``videos/<file name>``.

As the spec says, only videos both in the list and in the JSON survive: list entries without
descriptions and descriptions of unlisted videos are dropped, with a warning giving the
counts. ``skip_missing_videos=True`` also drops videos absent from disk (CLIP4Clip's rule).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tvr.data.records import SourceError, VideoTextRecord
from tvr.data.sources._contract import COMMON_OPTIONS, Option, finish, start_load
from tvr.data.sources._layout import VideoLocator
from tvr.data.sources._readers import (
    expect_dict,
    expect_list,
    expect_time_pairs,
    get_key,
    get_text,
    read_json,
    read_split_list,
)
from tvr.registry import register

logger = logging.getLogger(__name__)

NAME = "didemo"
SPLITS: tuple[str, ...] = ("train", "val", "test")
WINDOW: tuple[float, float] = (0.0, 31.0)
VIDEO_DIRS: tuple[str, ...] = ("videos",)
VIDEO_EXTS: tuple[str, ...] = ("",)  # list entries are file names with their extension
OPTIONS: dict[str, Option] = dict(COMMON_OPTIONS)


def read_descriptions(path: Path) -> dict[str, list[str]]:
    """Descriptions per video file name from a ``*_data.json`` file, in file order.

    Raises:
        SourceError: missing file, bad JSON, an entry without a string ``video`` / non-empty
            ``description``, or ``times`` that are not lists of two numbers (naming the key).
    """
    data = expect_list(
        read_json(path, "DiDeMo annotation file"),
        path,
        (),
        "a list of {video, description, times} objects",
    )
    out: dict[str, list[str]] = {}
    for i, item in enumerate(data):
        item = expect_dict(item, path, (i,), "an object with video, description and times")
        video = get_text(item, "video", path, (i,), "a video file name")
        text = get_text(
            item, "description", path, (i,), "a description string", "a non-empty description"
        )
        pairs = "a list of [start, end] chunk pairs"
        expect_time_pairs(get_key(item, "times", path, (i,), pairs), path, (i, "times"), pairs)
        out.setdefault(video, []).append(text)
    return out


@register("source", NAME)
def load(root: str | Path, split: str, **options: Any) -> list[VideoTextRecord]:
    """Load one DiDeMo split in paragraph mode.

    Args:
        root: dataset folder holding the lists, the JSON files and ``videos/``.
        split: ``train``, ``val`` or ``test``.
        **options: ``video_dir``, ``check_videos``, ``skip_missing_videos``.

    Returns:
        One record per video in the list and the JSON, in list order, with one paragraph and
        the window ``[0, 31]``.

    Raises:
        SourceOptionError: unknown split or option.
        SourceError: malformed or missing files, or no video in both the list and the JSON.
        MissingVideosError: with ``check_videos=True`` when video files are absent.
    """
    root, opts = start_load(NAME, root, split, options, OPTIONS, SPLITS)
    list_path, ids = read_split_list(root, split, "DiDeMo")
    json_path = root / f"{split}_data.json"
    descriptions = read_descriptions(json_path)
    locator = VideoLocator(root, VIDEO_DIRS, VIDEO_EXTS, opts["video_dir"])
    records = [
        VideoTextRecord(vid, locator.path(vid), (" ".join(descriptions[vid]),), *WINDOW)
        for _, vid in ids
        if vid in descriptions
    ]
    no_text = len(ids) - len(records)
    listed = {vid for _, vid in ids}
    unlisted = sorted(v for v in descriptions if v not in listed)
    if no_text:
        logger.warning(
            "%s/%s: %d of %d listed videos have no description in %s; dropped",
            NAME,
            split,
            no_text,
            len(ids),
            json_path.name,
        )
    if unlisted:
        logger.warning(
            "%s/%s: descriptions of %d videos not in %s are ignored (e.g. %s)",
            NAME,
            split,
            len(unlisted),
            list_path.name,
            unlisted[0],
        )
    if not records:
        raise SourceError(
            json_path, "", f"no video of {list_path} has a description here; the split is empty"
        )
    return finish(NAME, split, records, opts, list_path)
