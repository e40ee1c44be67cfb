"""The record every benchmark source produces, and the errors sources raise."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class VideoTextRecord:
    """One gallery video and the captions that describe it within a split.

    Attributes:
        video_id: stable id of the video within its dataset (e.g. ``"video7020"``).
        video_path: path of the video file (may not exist yet; see :func:`missing_videos`).
        captions: the captions of this video in this split, in file order. Paragraph
            datasets (ActivityNet, DiDeMo) hold a single paragraph.
        start: start of the clip in seconds within the file, or ``None`` for the whole file.
        end: end of the clip in seconds, or ``None`` for the end of the file.
    """

    video_id: str
    video_path: Path
    captions: tuple[str, ...]
    start: float | None = None
    end: float | None = None

    def __post_init__(self) -> None:
        if not self.captions:
            raise ValueError(f"record {self.video_id!r} has no captions")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(
                f"record {self.video_id!r}: end {self.end} must be greater than start {self.start}"
            )


class SourceError(ValueError):
    """Malformed annotation input.

    The message names the file, the line or key, and what was expected.
    """

    def __init__(self, path: Path | str, where: str, problem: str) -> None:
        self.path = Path(path)
        self.where = where
        self.problem = problem
        loc = f"{self.path}" + (f" ({where})" if where else "")
        super().__init__(f"{loc}: {problem}")


class MissingVideosError(FileNotFoundError):
    """Video files referenced by the annotations are absent; lists all of them at once."""

    def __init__(self, missing: Sequence[Path], total: int) -> None:
        self.missing = list(missing)
        shown = "\n  ".join(str(p) for p in self.missing[:20])
        more = f"\n  ... and {len(self.missing) - 20} more" if len(self.missing) > 20 else ""
        super().__init__(
            f"{len(self.missing)} of {total} video files are missing:\n  {shown}{more}"
        )


def missing_videos(records: Iterable[VideoTextRecord]) -> list[Path]:
    """Paths of the records whose video file does not exist (in record order, no repeats)."""
    seen: set[Path] = set()
    out: list[Path] = []
    for rec in records:
        p = rec.video_path
        if p not in seen:
            seen.add(p)
            if not p.is_file():
                out.append(p)
    return out


def check_videos_exist(records: Sequence[VideoTextRecord]) -> None:
    """Raise :class:`MissingVideosError` listing every missing video file at once."""
    missing = missing_videos(records)
    if missing:
        raise MissingVideosError(missing, total=len({r.video_path for r in records}))
