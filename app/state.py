"""Where the app may read, and the "where am I" state shared by every page.

The app reads files only under its configured roots: the checkpoints root (runs and their
bundles) and the data root (datasets, for playable clips). Set them with the environment
variables ``DRGI_LAB_CHECKPOINTS`` and ``DRGI_LAB_DATA`` (defaults: ``checkpoints/`` and
``data/`` of the repository). Any other path is refused with a message.

Selections that define "where am I" (base run, DRGI run, bundle, query) are widget keys bound
to the URL's query parameters, so a failure case can be shared as a link.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Widget keys bound to the URL (st.* widgets use bind="query-params" with these keys).
KEY_BASE_RUN = "base"
KEY_DRGI_RUN = "drgi"
KEY_SPLIT = "split"
KEY_QUERY = "q"
KEY_VIDEO = "v"  # a video index (attention graphs of a video)


class PathOutsideRootsError(PermissionError):
    """A path the app was asked to read lies outside its configured roots."""


@dataclass(frozen=True)
class AppRoots:
    """The folders the app may read."""

    checkpoints: Path
    data: Path

    @classmethod
    def from_env(cls) -> AppRoots:
        ck = Path(os.environ.get("DRGI_LAB_CHECKPOINTS", REPO / "checkpoints"))
        data = Path(os.environ.get("DRGI_LAB_DATA", REPO / "data"))
        return cls(checkpoints=ck.expanduser().resolve(), data=data.expanduser().resolve())

    def check(self, path: str | Path) -> Path:
        """Resolve ``path`` (symlinks too) and return it if it lies under a root.

        Raises:
            PathOutsideRootsError: naming the path and the allowed roots.
        """
        p = Path(path).expanduser().resolve()
        for root in (self.checkpoints, self.data):
            if p == root or root in p.parents:
                return p
        raise PathOutsideRootsError(
            f"{p} is outside the app's roots ({self.checkpoints} and {self.data}); "
            "set DRGI_LAB_CHECKPOINTS / DRGI_LAB_DATA to read elsewhere"
        )
