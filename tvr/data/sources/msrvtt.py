"""MSR-VTT (data_and_metrics.md section 3): CLIP4Clip's ``msrvtt_data`` files.

Protocols:

- ``1k-A`` (default): ``train`` = every caption in ``MSRVTT_data.json`` of every video listed in
  ``MSRVTT_train.9k.csv`` (or ``.7k.csv`` with ``train_list="7k"``); ``test`` = the 1,000
  JSFusion pairs of ``MSRVTT_JSFUSION_test.csv``, one record per row in file order.
- ``full``: the official splits from the JSON ``videos[*].split`` field (``train`` /
  ``validate`` / ``test`` -> splits ``train`` / ``val`` / ``test``), all captions per video.

Videos live at ``videos/all/{id}.mp4`` or ``videos/{id}.mp4``, with ``.webm`` used when the
``.mp4`` is missing. The parsers here are reused by the SynthVTT source, which writes the same
layout.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tvr.data.records import SourceError, VideoTextRecord
from tvr.data.sources._contract import (
    COMMON_OPTIONS,
    Option,
    SourceOptionError,
    check_root,
    check_split,
    finish,
    resolve_options,
)
from tvr.data.sources._layout import VideoLocator
from tvr.data.sources._readers import (
    expect_dict,
    get_list,
    get_text,
    json_key,
    read_csv_rows,
    read_json,
)
from tvr.registry import register

logger = logging.getLogger(__name__)

NAME = "msrvtt"
DATA_JSON = "MSRVTT_data.json"
TEST_CSV = "MSRVTT_JSFUSION_test.csv"
TRAIN_LISTS: dict[str, str] = {"9k": "MSRVTT_train.9k.csv", "7k": "MSRVTT_train.7k.csv"}
VIDEO_DIRS: tuple[str, ...] = ("videos/all", "videos")
VIDEO_EXTS: tuple[str, ...] = (".mp4", ".webm")
PROTOCOL_SPLITS: dict[str, tuple[str, ...]] = {
    "1k-A": ("train", "test"),
    "full": ("train", "val", "test"),
}
# split name of this library -> value of the JSON "split" field (protocol "full")
OFFICIAL_SPLITS: dict[str, str] = {"train": "train", "val": "validate", "test": "test"}

OPTIONS: dict[str, Option] = {
    **COMMON_OPTIONS,
    "protocol": Option(
        "1k-A",
        "1k-A (9k/7k train, JSFusion 1k test) or full (official splits)",
        choices=tuple(PROTOCOL_SPLITS),
    ),
    "train_list": Option(
        "9k", "training list of protocol 1k-A: 9k or 7k", choices=tuple(TRAIN_LISTS)
    ),
}


def video_locator(root: Path, video_dir: str | Path | None) -> VideoLocator:
    """The MSR-VTT video layout: ``videos/all`` or ``videos``, ``.mp4`` then ``.webm``."""
    return VideoLocator(root, VIDEO_DIRS, VIDEO_EXTS, video_dir)


def read_sentences(json_path: Path) -> dict[str, list[str]]:
    """Captions per video id from ``MSRVTT_data.json`` (key ``sentences``), in file order.

    Raises:
        SourceError: missing file, bad JSON, or a ``sentences`` entry without a string
            ``video_id`` / non-empty ``caption``.
    """
    return captions_by_video(read_json(json_path, "MSR-VTT annotation JSON"), json_path)


def captions_by_video(data: Any, json_path: Path) -> dict[str, list[str]]:
    """Captions per video id from the parsed ``MSRVTT_data.json`` (see :func:`read_sentences`)."""
    data = expect_dict(data, json_path, (), "an object")
    sentences = get_list(data, "sentences", json_path, (), "a list of {video_id, caption} objects")
    out: dict[str, list[str]] = {}
    for i, item in enumerate(sentences):
        where = ("sentences", i)
        item = expect_dict(item, json_path, where, "an object with video_id and caption")
        vid = get_text(item, "video_id", json_path, where, "a video id string")
        caption = get_text(
            item, "caption", json_path, where, "a caption string", "a non-empty caption string"
        )
        out.setdefault(vid, []).append(caption)
    return out


def read_listed_videos(
    list_path: Path, json_path: Path, locator: VideoLocator
) -> list[VideoTextRecord]:
    """One record per video of a ``video_id`` list CSV, with all its captions from the JSON.

    The number of captions per video is whatever the JSON holds (never assumed to be 20).

    Raises:
        SourceError: missing file or ``video_id`` column, a duplicate id, or a listed video
            that has no caption in the JSON (naming the list file and line).
    """
    rows = read_csv_rows(list_path, ("video_id",), "MSR-VTT training list")
    captions = read_sentences(json_path)
    records: list[VideoTextRecord] = []
    first_line: dict[str, int] = {}
    for line, row in rows:
        vid = row["video_id"].strip()
        if not vid:
            raise SourceError(list_path, f"line {line}", "empty video_id")
        if vid in first_line:
            raise SourceError(
                list_path,
                f"line {line}",
                f"duplicate video id {vid!r} (first on line {first_line[vid]})",
            )
        first_line[vid] = line
        caps = captions.get(vid)
        if not caps:
            raise SourceError(
                list_path,
                f"line {line}",
                f"video {vid!r} has no caption in {json_path} (key sentences)",
            )
        records.append(VideoTextRecord(vid, locator.path(vid), tuple(caps)))
    return records


def read_query_csv(
    csv_path: Path, locator: VideoLocator, *, several_per_video: bool = False
) -> list[VideoTextRecord]:
    """One record per row of a JSFusion-format CSV (``key,vid_key,video_id,sentence``).

    Rows keep file order, so row i is query i and gallery video i (diagonal ground truth).
    With ``several_per_video`` (SynthVTT's multi-caption test splits) a video's rows must be
    consecutive and make one record with their captions in file order.

    Raises:
        SourceError: missing file, a missing ``video_id``/``sentence`` column, a wrong field
            count, an empty sentence, or a video listed twice (listed again after other videos
            with ``several_per_video``).
    """
    rows = read_csv_rows(csv_path, ("video_id", "sentence"), "MSR-VTT query CSV")
    records: list[VideoTextRecord] = []
    first_line: dict[str, int] = {}
    for line, row in rows:
        vid = row["video_id"].strip()
        sentence = row["sentence"].strip()
        if not vid:
            raise SourceError(csv_path, f"line {line}", "empty video_id")
        if not sentence:
            raise SourceError(csv_path, f"line {line}", f"empty sentence for video {vid!r}")
        if several_per_video and records and records[-1].video_id == vid:
            last = records[-1]
            records[-1] = VideoTextRecord(vid, last.video_path, (*last.captions, sentence))
            continue
        if vid in first_line:
            raise SourceError(
                csv_path,
                f"line {line}",
                f"duplicate video id {vid!r} (first on line {first_line[vid]}); "
                + ("a video's rows must be consecutive" if several_per_video
                   else "this split has one caption per video"),
            )
        first_line[vid] = line
        records.append(VideoTextRecord(vid, locator.path(vid), (sentence,)))
    return records


def read_official_split(
    json_path: Path, official: str, locator: VideoLocator
) -> list[VideoTextRecord]:
    """Videos whose JSON ``split`` field equals ``official``, in file order, all captions.

    Raises:
        SourceError: bad ``videos`` entries, an unknown split value, a duplicate video, or a
            video without captions (naming the JSON key).
    """
    data = read_json(json_path, "MSR-VTT annotation JSON")
    captions = captions_by_video(data, json_path)
    videos = get_list(data, "videos", json_path, (), "a list of {video_id, split} objects")
    valid = set(OFFICIAL_SPLITS.values())
    records: list[VideoTextRecord] = []
    seen: set[str] = set()
    for i, item in enumerate(videos):
        where = ("videos", i)
        item = expect_dict(item, json_path, where, "an object with video_id and split")
        vid = get_text(item, "video_id", json_path, where, "a video id string")
        split = get_text(item, "split", json_path, where, f"one of {sorted(valid)}")
        if split not in valid:
            raise SourceError(
                json_path,
                json_key(*where, "split"),
                f"expected one of {', '.join(sorted(valid))}, got {split!r}",
            )
        if vid in seen:
            raise SourceError(json_path, json_key(*where, "video_id"), f"duplicate video {vid!r}")
        seen.add(vid)
        if split != official:
            continue
        if vid not in captions:
            raise SourceError(
                json_path, json_key(*where), f"video {vid!r} has no caption in key sentences"
            )
        records.append(VideoTextRecord(vid, locator.path(vid), tuple(captions[vid])))
    return records


@register("source", NAME)
def load(root: str | Path, split: str, **options: Any) -> list[VideoTextRecord]:
    """Load one MSR-VTT split.

    Args:
        root: dataset folder holding the CSV/JSON files and ``videos/``.
        split: ``train`` or ``test`` (protocol ``1k-A``); ``train``, ``val`` or ``test``
            (protocol ``full``).
        **options: ``protocol`` (``"1k-A"`` | ``"full"``), ``train_list`` (``"9k"`` | ``"7k"``,
            protocol 1k-A only), ``video_dir``, ``check_videos``, ``skip_missing_videos``.

    Returns:
        One record per video: training videos carry all their captions, 1k-A test videos one.

    Raises:
        SourceOptionError: unknown split or option, or ``train_list`` with protocol ``full``.
        SourceError: malformed or missing annotation files.
        MissingVideosError: with ``check_videos=True`` when video files are absent.
    """
    root = Path(root)
    opts = resolve_options(NAME, options, OPTIONS)
    protocol = opts["protocol"]
    hint = "; protocol 'full' has a val split" if protocol == "1k-A" else ""
    check_split(NAME, split, PROTOCOL_SPLITS[protocol], context=f"protocol {protocol!r}{hint}")
    if protocol == "full" and "train_list" in options:
        raise SourceOptionError(
            f"source {NAME!r}: option 'train_list' applies to protocol '1k-A' only; protocol "
            "'full' takes its splits from the split field of MSRVTT_data.json"
        )
    check_root(NAME, root)
    locator = video_locator(root, opts["video_dir"])
    json_path = root / DATA_JSON
    if protocol == "full":
        records = read_official_split(json_path, OFFICIAL_SPLITS[split], locator)
        annotation = json_path
    elif split == "train":
        annotation = root / TRAIN_LISTS[opts["train_list"]]
        records = read_listed_videos(annotation, json_path, locator)
    else:
        annotation = root / TEST_CSV
        records = read_query_csv(annotation, locator)
    return finish(NAME, split, records, opts, annotation)
