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
from tvr.data.sources._contract import (
    COMMON_OPTIONS,
    Option,
    check_root,
    check_split,
    finish,
    resolve_options,
)
from tvr.data.sources._layout import VideoLocator
from tvr.data.sources._readers import (
    expect_dict,
    expect_list,
    expect_seconds,
    expect_text,
    get_key,
    json_key,
    read_id_list,
    read_json,
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
        video = expect_text(
            get_key(item, "video", path, (i,), "a video file name"),
            path,
            (i, "video"),
            "a video file name",
        )
        text = expect_text(
            get_key(item, "description", path, (i,), "a description string"),
            path,
            (i, "description"),
            "a non-empty description",
        )
        times = expect_list(
            get_key(item, "times", path, (i,), "a list of [start, end] chunk pairs"),
            path,
            (i, "times"),
            "a list of [start, end] chunk pairs",
        )
        for j, pair in enumerate(times):
            pair = expect_list(pair, path, (i, "times", j), "a [start, end] pair")
            if len(pair) != 2:
                raise SourceError(
                    path, json_key(i, "times", j), f"expected [start, end], got {pair!r}"
                )
            for k, t in enumerate(pair):
                expect_seconds(t, path, json_key(i, "times", j, k))
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
    root = Path(root)
    opts = resolve_options(NAME, options, OPTIONS)
    check_split(NAME, split, SPLITS)
    check_root(NAME, root)
    list_path, json_path = root / f"{split}_list.txt", root / f"{split}_data.json"
    ids = read_id_list(list_path, f"DiDeMo {split} list")
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
