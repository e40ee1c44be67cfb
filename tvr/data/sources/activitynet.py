"""ActivityNet Captions (data_and_metrics.md section 6): paragraph-to-video retrieval.

- ``train_ids.json`` / ``val_ids.json``: lists of ``"v_<youtube id>"``.
- ``train.json`` / ``val_1.json``: ``{"v_...": {"duration", "timestamps", "sentences"}}``.
- ``train`` = train_ids + train.json; ``test`` = val_ids + val_1.json (val_2 is unused).
- Paragraph mode: one record per video whose single caption is all its sentences (stripped)
  joined with single spaces, over the window ``[0, ceil(duration)]``.
- Videos: ``videos/<id without "v_">`` + ``.mp4``, ``.mkv`` or ``.webm``.

An id list may name videos the annotation file lacks (the official ``val_ids.json`` covers
val_1 and val_2): those are skipped and counted in the log. An annotation entry for a video
not in the id list is an error. Many YouTube videos are gone; ``skip_missing_videos=True``
reproduces CLIP4Clip's silent skipping, but logs N.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from tvr.data.records import SourceError, VideoTextRecord
from tvr.data.sources._contract import COMMON_OPTIONS, Option, finish, start_load
from tvr.data.sources._layout import VideoLocator
from tvr.data.sources._readers import (
    expect_dict,
    expect_list,
    expect_seconds,
    expect_text,
    expect_time_pairs,
    get_key,
    get_list,
    json_key,
    read_json,
)
from tvr.registry import register

logger = logging.getLogger(__name__)

NAME = "activitynet"
SPLIT_FILES: dict[str, tuple[str, str]] = {  # split -> (id list, annotation)
    "train": ("train_ids.json", "train.json"),
    "test": ("val_ids.json", "val_1.json"),
}
VIDEO_DIRS: tuple[str, ...] = ("videos",)
VIDEO_EXTS: tuple[str, ...] = (".mp4", ".mkv", ".webm")
OPTIONS: dict[str, Option] = dict(COMMON_OPTIONS)


def read_ids(path: Path) -> list[str]:
    """Video ids from an id-list JSON, in order; repeated ids are dropped with a warning.

    Raises:
        SourceError: missing file, bad JSON, not a list of non-empty strings, or an empty list.
    """
    ids = expect_list(read_json(path, "ActivityNet id list"), path, (), "a list of video ids")
    if not ids:
        raise SourceError(path, "top level", "the id list is empty; expected video ids")
    out: list[str] = []
    seen: set[str] = set()
    for i, vid in enumerate(ids):
        vid = expect_text(vid, path, (i,), "a video id string")
        if vid in seen:
            logger.warning("%s [%d]: video id %s listed twice; keeping the first", path, i, vid)
            continue
        seen.add(vid)
        out.append(vid)
    return out


def paragraph(entry: Any, path: Path, vid: str) -> tuple[str, float]:
    """The paragraph of one annotation entry and its window end ``ceil(duration)``.

    Raises:
        SourceError: a missing or non-numeric/non-positive ``duration``, missing or empty
            ``sentences``, a non-string sentence, or a non-numeric ``timestamps`` value.
    """
    entry = expect_dict(entry, path, (vid,), "an object with duration and sentences")
    duration = expect_seconds(
        get_key(entry, "duration", path, (vid,), "the video duration in seconds"),
        path,
        json_key(vid, "duration"),
    )
    if duration <= 0:
        raise SourceError(
            path, json_key(vid, "duration"), f"expected a positive duration, got {duration}"
        )
    sentences = get_list(entry, "sentences", path, (vid,), "a list of sentences")
    if not sentences:
        raise SourceError(path, json_key(vid, "sentences"), "expected at least one sentence")
    texts = [
        expect_text(s, path, (vid, "sentences", i), "a sentence string")
        for i, s in enumerate(sentences)
    ]
    expect_time_pairs(
        entry.get("timestamps", []), path, (vid, "timestamps"), "a list of [start, end] pairs"
    )
    return " ".join(texts), float(math.ceil(duration))


@register("source", NAME)
def load(root: str | Path, split: str, **options: Any) -> list[VideoTextRecord]:
    """Load one ActivityNet Captions split in paragraph mode.

    Args:
        root: dataset folder holding the id lists, annotations and ``videos/``.
        split: ``train`` or ``test`` (val_1).
        **options: ``video_dir``, ``check_videos``, ``skip_missing_videos``.

    Returns:
        One record per annotated video, in id-list order, with one paragraph caption and the
        window ``start=0``, ``end=ceil(duration)``.

    Raises:
        SourceOptionError: unknown split or option.
        SourceError: malformed or missing files, or an annotated video absent from the id list.
        MissingVideosError: with ``check_videos=True`` when video files are absent.
    """
    root, opts = start_load(NAME, root, split, options, OPTIONS, tuple(SPLIT_FILES))
    ids_name, ann_name = SPLIT_FILES[split]
    ids_path, ann_path = root / ids_name, root / ann_name
    ids = read_ids(ids_path)
    ann = expect_dict(
        read_json(ann_path, "ActivityNet annotation file"),
        ann_path,
        (),
        "an object mapping video id -> {duration, timestamps, sentences}",
    )
    listed = set(ids)
    for vid in ann:
        if vid not in listed:
            raise SourceError(
                ann_path,
                json_key(vid),
                f"caption for video {vid!r}, which is not in the split's video list {ids_path}",
            )
    locator = VideoLocator(root, VIDEO_DIRS, VIDEO_EXTS, opts["video_dir"])
    records: list[VideoTextRecord] = []
    for vid in ids:
        if vid not in ann:
            continue
        text, end = paragraph(ann[vid], ann_path, vid)
        stem = vid[2:] if vid.startswith("v_") else vid
        records.append(VideoTextRecord(vid, locator.path(stem), (text,), start=0.0, end=end))
    unannotated = len(ids) - len(records)
    if unannotated:
        logger.info(
            "%s/%s: %d of %d listed videos have no entry in %s and are skipped",
            NAME,
            split,
            unannotated,
            len(ids),
            ann_path.name,
        )
    return finish(NAME, split, records, opts, ann_path)
