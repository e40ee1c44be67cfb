"""LSMDC (data_and_metrics.md section 5): the LSMDC 2016 annotation files.

Each file is tab-separated with no header and 6 fields per line: clip id, start aligned, end
aligned, start extracted, end extracted (``hh.mm.ss.mmm`` stamps), sentence. Clips are
pre-cut, so records carry no window. A clip id may repeat in train (and val), where its
sentences become the captions of one record; the 1,000-clip test file has no repeats. Videos
live at ``videos/<movie>/<clip id>.avi``, where ``<movie>`` is the clip id up to its first
``.`` with the last 3 characters removed. The known-broken clip
``1012_Unbreakable_00.05.16.065-00.05.21.941`` is skipped with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tvr.data.records import SourceError, VideoTextRecord
from tvr.data.sources._contract import COMMON_OPTIONS, Option, finish, start_load
from tvr.data.sources._layout import VideoLocator
from tvr.data.sources._readers import require_file, text_lines, to_seconds
from tvr.registry import register

logger = logging.getLogger(__name__)

NAME = "lsmdc"
SPLIT_FILES: dict[str, str] = {
    "train": "LSMDC16_annos_training.csv",
    "val": "LSMDC16_annos_val.csv",
    "test": "LSMDC16_challenge_1000_publictect.csv",
}
# splits where a clip id may carry several sentences (grouped into one record)
REPEATS_ALLOWED: frozenset[str] = frozenset({"train", "val"})
BROKEN_CLIPS: frozenset[str] = frozenset({"1012_Unbreakable_00.05.16.065-00.05.21.941"})
FIELDS: tuple[str, ...] = (
    "clip id",
    "start aligned",
    "end aligned",
    "start extracted",
    "end extracted",
    "sentence",
)
VIDEO_DIRS: tuple[str, ...] = ("videos",)
VIDEO_EXTS: tuple[str, ...] = (".avi",)
OPTIONS: dict[str, Option] = dict(COMMON_OPTIONS)


def movie_of(clip_id: str) -> str | None:
    """The movie folder of a clip id: up to the first ``.``, minus its last 3 characters.

    ``1012_Unbreakable_00.05.16.065-00.05.21.941`` -> ``1012_Unbreakable``. ``None`` when the
    id has no ``.`` or too short a prefix.
    """
    head, dot, _ = clip_id.partition(".")
    if not dot or len(head) <= 3:
        return None
    return head[:-3]


def read_annotations(path: Path, allow_repeats: bool) -> list[tuple[int, str, list[str]]]:
    """Parse an LSMDC file into ``(first line, clip id, sentences)`` per clip, in file order.

    Raises:
        SourceError: missing file, a line without exactly 6 tab-separated fields, a time field
            that is not a time stamp, an empty sentence, a clip id without a movie prefix, or a
            repeated clip id where repeats are not allowed (naming the line).
    """
    require_file(path, "LSMDC annotation file")
    clips: dict[str, tuple[int, list[str]]] = {}
    for n, raw in enumerate(text_lines(path), start=1):
        if not raw.strip():
            continue
        fields = raw.strip().split("\t")
        if len(fields) != len(FIELDS):
            raise SourceError(
                path,
                f"line {n}",
                f"expected {len(FIELDS)} tab-separated fields ({', '.join(FIELDS)}), "
                f"got {len(fields)}",
            )
        clip_id = fields[0].strip()
        sentence = fields[5].strip()
        for name, value in zip(FIELDS[1:5], fields[1:5]):
            if to_seconds(value) is None:
                raise SourceError(
                    path,
                    f"line {n}",
                    f"field {name!r}: expected a time stamp hh.mm.ss.mmm or seconds, got {value!r}",
                )
        if movie_of(clip_id) is None:
            raise SourceError(
                path,
                f"line {n}",
                f"clip id {clip_id!r} does not look like <movie>_hh.mm.ss.mmm-hh.mm.ss.mmm",
            )
        if not sentence:
            raise SourceError(path, f"line {n}", f"empty sentence for clip {clip_id!r}")
        if clip_id in BROKEN_CLIPS:
            logger.warning("%s line %d: skipping known-broken clip %s", path, n, clip_id)
            continue
        if clip_id in clips:
            if not allow_repeats:
                raise SourceError(
                    path,
                    f"line {n}",
                    f"duplicate clip id {clip_id!r} (first on line {clips[clip_id][0]}); this "
                    "split has one sentence per clip",
                )
            clips[clip_id][1].append(sentence)
        else:
            clips[clip_id] = (n, [sentence])
    return [(line, cid, sents) for cid, (line, sents) in clips.items()]


@register("source", NAME)
def load(root: str | Path, split: str, **options: Any) -> list[VideoTextRecord]:
    """Load one LSMDC split.

    Args:
        root: dataset folder holding the annotation files and ``videos/<movie>/``.
        split: ``train``, ``val`` or ``test``.
        **options: ``video_dir``, ``check_videos``, ``skip_missing_videos``.

    Returns:
        One record per clip in order of first appearance; train clips with repeated ids carry
        all their sentences.

    Raises:
        SourceOptionError: unknown split or option.
        SourceError: malformed or missing annotation file.
        MissingVideosError: with ``check_videos=True`` when video files are absent.
    """
    root, opts = start_load(NAME, root, split, options, OPTIONS, tuple(SPLIT_FILES))
    path = root / SPLIT_FILES[split]
    locator = VideoLocator(root, VIDEO_DIRS, VIDEO_EXTS, opts["video_dir"])
    records = [
        VideoTextRecord(cid, locator.path(f"{movie_of(cid)}/{cid}"), tuple(sents))
        for _, cid, sents in read_annotations(path, allow_repeats=split in REPEATS_ALLOWED)
    ]
    return finish(NAME, split, records, opts, path)
