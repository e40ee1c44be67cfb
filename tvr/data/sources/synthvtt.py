"""SynthVTT (synthvtt.md): the generated benchmark, read with the MSR-VTT parsers.

The generator writes the MSR-VTT layout: ``videos/video{N}.mp4``, ``MSRVTT_data.json``,
``MSRVTT_train.9k.csv`` (train ids), ``MSRVTT_JSFUSION_test.csv`` (test: one caption per
video, or ``--test-captions K`` consecutive rows per video) and ``val.csv`` (same columns as the
test CSV). ``train`` holds every caption of every listed video (5 per video by default); ``val``
and ``test`` hold one record per video in file order with its captions (one by default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tvr.data.records import VideoTextRecord
from tvr.data.sources import msrvtt
from tvr.data.sources._contract import COMMON_OPTIONS, Option, finish, start_load
from tvr.registry import register

NAME = "synthvtt"
SPLITS: tuple[str, ...] = ("train", "val", "test")
TRAIN_LIST = "MSRVTT_train.9k.csv"
QUERY_CSVS: dict[str, str] = {"val": "val.csv", "test": "MSRVTT_JSFUSION_test.csv"}
OPTIONS: dict[str, Option] = dict(COMMON_OPTIONS)


@register("source", NAME)
def load(root: str | Path, split: str, **options: Any) -> list[VideoTextRecord]:
    """Load one SynthVTT split.

    Args:
        root: the generated dataset folder (default ``data/synthvtt``).
        split: ``train``, ``val`` or ``test``.
        **options: ``video_dir``, ``check_videos``, ``skip_missing_videos``.

    Returns:
        One record per video with all its captions (val/test: one unless the dataset was
        generated with ``--test-captions``).

    Raises:
        SourceOptionError: unknown split or option.
        SourceError: malformed or missing annotation files.
        MissingVideosError: with ``check_videos=True`` when video files are absent.
    """
    root, opts = start_load(NAME, root, split, options, OPTIONS, SPLITS)
    locator = msrvtt.video_locator(root, opts["video_dir"])
    if split == "train":
        annotation = root / TRAIN_LIST
        records = msrvtt.read_listed_videos(annotation, root / msrvtt.DATA_JSON, locator)
    else:
        annotation = root / QUERY_CSVS[split]
        records = msrvtt.read_query_csv(annotation, locator, several_per_video=True)
    return finish(NAME, split, records, opts, annotation)
