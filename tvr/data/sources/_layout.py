"""Where a benchmark's video files live on disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def under_root(root: Path, path: str | Path) -> Path:
    """``path`` as given when absolute, else relative to the dataset ``root``."""
    path = Path(path)
    return path if path.is_absolute() else root / path


class VideoLocator:
    """Maps a video stem to its file path under a dataset root.

    The folder is the ``video_dir`` override when given (relative to the root unless
    absolute); otherwise every candidate folder that exists, in order, falling back to the
    first candidate when none exists. For a stem, the first existing ``folder/stem+ext`` over
    folders then extensions wins; when none exists the path in the first folder with the first
    extension is returned, so a missing file is reported at its expected place.

    Args:
        root: dataset root folder.
        candidates: folders relative to ``root`` to look in, most likely first.
        exts: file extensions with their dot, tried in order (``""`` when stems are file names).
        override: the ``video_dir`` option, or ``None`` for the candidates.
    """

    def __init__(
        self,
        root: Path,
        candidates: Sequence[str],
        exts: Sequence[str],
        override: str | Path | None = None,
    ) -> None:
        if not candidates or not exts:
            raise ValueError("VideoLocator needs at least one candidate folder and one extension")
        if override is not None:
            self.dirs: tuple[Path, ...] = (under_root(root, override),)
        else:
            existing = tuple(root / c for c in candidates if (root / c).is_dir())
            self.dirs = existing or (root / candidates[0],)
        self.exts = tuple(exts)

    def path(self, stem: str) -> Path:
        """File path of the video ``stem`` (may contain ``/`` for a sub-folder)."""
        if len(self.dirs) == 1 and len(self.exts) == 1:
            return self.dirs[0] / f"{stem}{self.exts[0]}"
        for folder in self.dirs:
            for ext in self.exts:
                candidate = folder / f"{stem}{ext}"
                if candidate.is_file():
                    return candidate
        return self.dirs[0] / f"{stem}{self.exts[0]}"
