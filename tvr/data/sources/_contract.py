"""What every source shares: option and split checking, and the final checks on its records.

A source declares its options as a mapping ``name -> Option`` (the common ones below plus its
own), resolves the caller's keyword options with :func:`resolve_options`, checks the split
with :func:`check_split` and the root with :func:`check_root` (:func:`start_load` does all
three), parses, and hands its records to :func:`finish`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tvr.data.records import (
    MissingVideosError,
    SourceError,
    VideoTextRecord,
    check_videos_exist,
    missing_videos,
)

logger = logging.getLogger(__name__)


class SourceOptionError(ValueError):
    """An unknown split, an unknown option or a bad option value; names the valid choices."""


@dataclass(frozen=True)
class Option:
    """One keyword option of a source.

    Attributes:
        default: value used when the caller does not pass the option.
        help: one-line description, shown in error messages.
        choices: the allowed values, or ``None`` for any value of the allowed types.
        types: the allowed Python types (empty = any type).
    """

    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    types: tuple[type, ...] = ()


COMMON_OPTIONS: dict[str, Option] = {
    "check_videos": Option(
        False, "raise MissingVideosError listing every absent video file", types=(bool,)
    ),
    "skip_missing_videos": Option(
        False,
        "drop records whose video file is absent (CLIP4Clip behaviour) and log how many",
        types=(bool,),
    ),
    "video_dir": Option(
        None,
        "folder holding the videos (relative to the root or absolute); default: auto",
        types=(str, Path, type(None)),
    ),
}


def resolve_options(
    source: str, given: Mapping[str, Any], spec: Mapping[str, Option]
) -> dict[str, Any]:
    """Merge the caller's options over the defaults of ``spec``, checking names and values.

    Raises:
        SourceOptionError: for an unknown option name (listing the valid ones), a value of the
            wrong type, or a value outside an option's choices.
    """
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise SourceOptionError(
            f"source {source!r}: unknown option(s) {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(sorted(spec))}"
        )
    out: dict[str, Any] = {}
    for name, opt in spec.items():
        value = given.get(name, opt.default)
        if opt.types and not isinstance(value, opt.types):
            types = " or ".join(t.__name__ for t in opt.types)
            raise SourceOptionError(
                f"source {source!r}: option {name!r} must be {types}, got {value!r}"
            )
        if opt.choices is not None and value not in opt.choices:
            raise SourceOptionError(
                f"source {source!r}: option {name!r} must be one of "
                f"{', '.join(map(repr, opt.choices))}, got {value!r}"
            )
        out[name] = value
    if out.get("check_videos") and out.get("skip_missing_videos"):
        raise SourceOptionError(
            f"source {source!r}: options 'check_videos' and 'skip_missing_videos' exclude each "
            "other (one raises on a missing video, the other drops it)"
        )
    return out


def check_split(source: str, split: str, splits: Sequence[str], context: str = "") -> None:
    """Raise :class:`SourceOptionError` unless ``split`` is one of ``splits``."""
    if split not in splits:
        ctx = f" ({context})" if context else ""
        raise SourceOptionError(
            f"source {source!r}{ctx}: unknown split {split!r}; valid splits: "
            f"{', '.join(map(repr, splits))}"
        )


def check_root(source: str, root: Path) -> None:
    """Raise :class:`SourceError` when the dataset root folder does not exist."""
    if not root.is_dir():
        raise SourceError(root, "", f"dataset root folder of source {source!r} not found")


def start_load(
    source: str,
    root: str | Path,
    split: str,
    given: Mapping[str, Any],
    spec: Mapping[str, Option],
    splits: Sequence[str],
) -> tuple[Path, dict[str, Any]]:
    """The checks that open a source's ``load``, in order: options, split, root folder.

    Args:
        source: registry name of the source (for messages).
        root: the dataset root folder as the caller gave it.
        split: the requested split.
        given: the caller's keyword options.
        spec: the source's option table.
        splits: the source's valid splits.

    Returns:
        The root as a :class:`~pathlib.Path` and the resolved options.

    Raises:
        SourceOptionError: an unknown or bad option, or an unknown split.
        SourceError: the root folder does not exist.
    """
    root = Path(root)
    opts = resolve_options(source, given, spec)
    check_split(source, split, splits)
    check_root(source, root)
    return root, opts


def finish(
    source: str,
    split: str,
    records: list[VideoTextRecord],
    options: Mapping[str, Any],
    annotation: Path,
) -> list[VideoTextRecord]:
    """Final checks shared by all sources; returns the records to hand out.

    Checks the split is not empty and its video ids are unique, applies
    ``skip_missing_videos`` / ``check_videos``, and logs the number of videos and captions.

    Args:
        source: registry name of the source (for messages).
        split: split name (for messages).
        records: the parsed records, one per video.
        options: the resolved options (see :data:`COMMON_OPTIONS`).
        annotation: the file that defines the split, named in the empty-split error.

    Raises:
        SourceError: when the split holds no videos.
        MissingVideosError: with ``check_videos``, or when ``skip_missing_videos`` leaves nothing.
    """
    if not records:
        raise SourceError(annotation, "", f"split {split!r} of source {source!r} has no videos")
    seen: set[str] = set()
    for rec in records:  # every source guarantees this; a failure here is a bug in the source
        if rec.video_id in seen:
            raise AssertionError(f"{source}/{split}: video id {rec.video_id!r} appears twice")
        seen.add(rec.video_id)
    if options.get("skip_missing_videos"):
        missing = set(missing_videos(records))
        if missing:
            kept = [r for r in records if r.video_path not in missing]
            logger.warning(
                "%s/%s: skipping %d of %d videos whose file is missing (e.g. %s)",
                source,
                split,
                len(records) - len(kept),
                len(records),
                next(iter(sorted(missing))),
            )
            if not kept:
                raise MissingVideosError(sorted(missing), total=len(records))
            records = kept
    if options.get("check_videos"):
        check_videos_exist(records)
    n_captions = sum(len(r.captions) for r in records)
    logger.info("%s/%s: %d videos, %d captions", source, split, len(records), n_captions)
    return records
