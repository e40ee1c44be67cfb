"""The errors of bundle reading and writing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class BundleError(RuntimeError):
    """A bundle that cannot be used: missing, incomplete or malformed files."""


def reexport_hint(bundle_dir: str | Path) -> str:
    """The command that rebuilds the bundle at ``bundle_dir`` (``<run>/analysis/<name>``)."""
    path = Path(bundle_dir)
    return f"python -m analysis.export --run {path.parent.parent} --force"


class StaleBundleError(BundleError):
    """A bundle whose checkpoint or dataset changed since it was exported.

    Attributes:
        path: the bundle folder.
        reasons: what changed, one sentence each.
    """

    def __init__(self, path: str | Path, reasons: Sequence[str]) -> None:
        self.path = Path(path)
        self.reasons = tuple(reasons)
        listed = "; ".join(self.reasons)
        super().__init__(
            f"bundle {self.path} is stale: {listed}. Re-export it with `python -m "
            f"analysis.export --run {self.path.parent.parent} --force`, or load it with "
            f"allow_stale=True"
        )


class BundleMetaError(BundleError):
    """A ``meta.json`` that does not fit :class:`~analysis.bundle.BundleMeta`: the message
    names the file, the field and what was expected (or how to re-export the bundle)."""
