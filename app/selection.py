"""What the sidebar picked: :class:`Selection`, the bundles of the chosen runs on one split.

:mod:`app.components.sidebar` builds it and :mod:`app.context` stores and serves it; both
import it from here, so the sidebar does not import the context that draws it (no import
circle). Pages import it from :mod:`app.context`, whose docstring lists the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from analysis.bundle import Bundle
from app.state import AppRoots

BASE_LABEL = "base"
DRGI_LABEL = "DRGI"


@dataclass(frozen=True)
class Selection:
    """What the sidebar picked (the API is listed in :mod:`app.context`).

    Attributes:
        roots: the app's readable roots.
        base_run: the base run folder.
        drgi_run: the second run folder, or None.
        dataset: dataset name of the split.
        split: split name.
        base: the base run's bundle on ``dataset``/``split``.
        drgi: the second run's bundle, or None (not picked or not exported).
        data_root: the dataset root inside the roots, None when not found.
    """

    roots: AppRoots
    base_run: Path
    drgi_run: Path | None
    dataset: str
    split: str
    base: Bundle
    drgi: Bundle | None
    data_root: Path | None

    @property
    def paired(self) -> bool:
        """Both bundles exist and hold the same captions and videos in the same order."""
        return self.drgi is not None and same_queries(self.base, self.drgi)

    @property
    def split_name(self) -> str:
        return f"{self.dataset}-{self.split}"

    def bundles(self) -> list[tuple[str, Bundle]]:
        """``[("base", base), ("DRGI", drgi)]`` for the bundles that are there."""
        out = [(BASE_LABEL, self.base)]
        if self.drgi is not None:
            out.append((DRGI_LABEL, self.drgi))
        return out

    def drgi_bundles(self) -> list[tuple[str, Bundle]]:
        """The selected bundles that carry DRGI arrays (attention, discriminator scores)."""
        return [(label, b) for label, b in self.bundles() if b.has_drgi]

    def label(self, bundle: Bundle) -> str:
        """``"base: <run>"`` or ``"DRGI: <run>"``."""
        which = BASE_LABEL if bundle is self.base else DRGI_LABEL
        return f"{which}: {bundle.run_name}"

    def require_pair(self, what: str) -> tuple[Bundle, Bundle]:
        """``(base, drgi)`` when both are there and comparable; else explain and stop."""
        if self.drgi is None:
            st.info(
                f"{what.capitalize()} compares two runs: pick a second run (and export its "
                f"bundle on {self.split_name}) in the sidebar."
            )
            st.stop()
        if not self.paired:
            from analysis.coverage import skipped_note

            why = skipped_note(self.base, None) or ""
            why = " ".join(x for x in (why, skipped_note(self.drgi, None) or "") if x)
            st.warning(
                f"{what.capitalize()} needs both bundles to hold the same captions and videos "
                f"in the same order, but {self.base.path} and {self.drgi.path} differ "
                f"({self.base.num_texts}x{self.base.num_videos} vs "
                f"{self.drgi.num_texts}x{self.drgi.num_videos}). {why} Re-export both on the "
                "same split (the Overview compares them on the queries they share)."
            )
            st.stop()
        return self.base, self.drgi  # type: ignore[return-value]

    def require_drgi(self, what: str) -> Bundle:
        """The second bundle when it has DRGI arrays, else the base one if it has; else
        explain that ``what`` needs a run trained with DRGI and stop."""
        for bundle in (self.drgi, self.base):
            if bundle is not None and bundle.has_drgi:
                return bundle
        picked = ", ".join(b.run_name for _, b in self.bundles())
        st.info(
            f"{what.capitalize()} needs a run trained with DRGI (its GAT and discriminator "
            f"are exported with the bundle); {picked} has none. Pick a DRGI run in the "
            "sidebar (config `objectives.drgi=true`)."
        )
        st.stop()
        raise AssertionError("unreachable")  # st.stop raises


def same_queries(a: Bundle, b: Bundle) -> bool:
    """Whether two bundles rank the same captions over the same videos, in the same order."""
    return (
        a.num_texts == b.num_texts
        and a.num_videos == b.num_videos
        and a.captions == b.captions
        and a.video_ids == b.video_ids
        and np.array_equal(a.text_to_video, b.text_to_video)
    )
