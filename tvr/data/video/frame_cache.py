"""The on-disk cache of sampled frames behind :class:`~tvr.data.video.FrameSampler`.

An entry is keyed by (absolute path, mtime, size in bytes, T, S, start, end, and whether frames
are keyframe-snapped), so an edited file misses; each entry is one ``.npz`` (``frames``,
``timestamps``) written atomically and read with ``allow_pickle=False``. An unreadable or
malformed entry is ignored with a warning, and a failed write only warns (a full or read-only
cache must not stop training).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from tvr.data.video.decode import DecodedFrames
from tvr.io import atomic_path

logger = logging.getLogger(__name__)

_CACHE_VERSION = 1


def cache_entry(
    cache_dir: Path,
    path: Path,
    num_frames: int,
    size: int,
    start: float | None,
    end: float | None,
    snapped: bool,
) -> Path | None:
    """The entry file of one clip's sampled frames, or None when ``path`` cannot be stat'ed."""
    try:
        st = path.stat()
    except OSError:
        return None  # the decoder reports the missing file
    fields: dict[str, object] = {
        "v": _CACHE_VERSION,
        "path": str(path.resolve()),
        "mtime_ns": st.st_mtime_ns,
        "bytes": st.st_size,
        "T": num_frames,
        "S": size,
        "start": start,
        "end": end,
    }
    if snapped:  # other frames than the exact modes, which share entries
        fields["snapped"] = True
    key = json.dumps(fields, sort_keys=True)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return cache_dir / digest[:2] / f"{digest}.npz"


def load_entry(entry: Path, num_frames: int, size: int) -> DecodedFrames | None:
    """The cached frames of ``entry`` (``method="cache"``), or None when absent or unusable.

    Shapes:
        returns: frames ``[n, size, size, 3]`` uint8 with ``1 <= n <= num_frames``,
        timestamps ``[n]`` float64.
    """
    if not entry.is_file():
        return None
    try:
        with np.load(entry, allow_pickle=False) as data:
            frames = data["frames"]
            timestamps = data["timestamps"]
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("ignoring unreadable frame-cache entry %s (%s)", entry, exc)
        return None
    n = frames.shape[0] if frames.ndim == 4 else -1
    if (
        frames.dtype != np.uint8
        or frames.shape[1:] != (size, size, 3)
        or not 1 <= n <= num_frames
        or timestamps.shape != (n,)
    ):
        logger.warning("ignoring malformed frame-cache entry %s", entry)
        return None
    return DecodedFrames(frames=frames, timestamps=timestamps.astype(np.float64), method="cache")


def store_entry(entry: Path, decoded: DecodedFrames) -> None:
    """Write ``decoded`` to ``entry`` atomically; a failed write only logs a warning."""
    try:
        with atomic_path(entry) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, frames=decoded.frames, timestamps=decoded.timestamps)
    except OSError as exc:  # a full or read-only cache must not stop training
        logger.warning("could not write frame-cache entry %s (%s)", entry, exc)
