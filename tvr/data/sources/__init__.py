"""Benchmark annotation parsers ("sources"), one module per benchmark.

Each module registers a loader with ``@register("source", name)``; a loader is called as
``load(root, split, **options) -> list[VideoTextRecord]`` and returns one record per video of
the split (training videos carry all their captions). Importing this package registers them
all, so ``tvr.registry.get("source", name)`` finds every built-in source.

Options shared by all sources: ``video_dir`` (where the videos are), ``check_videos`` (raise
:class:`~tvr.data.records.MissingVideosError` listing every absent file) and
``skip_missing_videos`` (drop records whose file is absent, logging how many). Sources do not
touch the video files otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tvr import registry
from tvr.data.records import SourceError, VideoTextRecord
from tvr.data.sources import activitynet, didemo, lsmdc, msrvtt, msvd, synthvtt, vatex
from tvr.data.sources._contract import SourceOptionError

__all__ = [
    "SourceError",
    "SourceOptionError",
    "activitynet",
    "didemo",
    "load_split",
    "lsmdc",
    "msrvtt",
    "msvd",
    "source_names",
    "synthvtt",
    "vatex",
]


def source_names() -> list[str]:
    """Names of all registered sources, sorted."""
    return registry.names("source")


def load_split(name: str, root: str | Path, split: str, **options: Any) -> list[VideoTextRecord]:
    """Parse one split of the benchmark registered as ``name``.

    Args:
        name: source name (``msrvtt``, ``msvd``, ``lsmdc``, ``activitynet``, ``didemo``,
            ``vatex``, ``synthvtt``).
        root: dataset root folder.
        split: split name; each source lists its valid splits in its error message.
        **options: source options (see each source module's ``OPTIONS``).

    Returns:
        One :class:`~tvr.data.records.VideoTextRecord` per video of the split.

    Raises:
        tvr.registry.RegistryError: unknown source name (lists the registered ones).
        SourceOptionError: unknown split or option, or a bad option value.
        SourceError: malformed or missing annotation files.
        tvr.data.records.MissingVideosError: with ``check_videos=True``.
    """
    loader = registry.get("source", name)
    return loader(Path(root), split, **options)
