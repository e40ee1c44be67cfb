"""The current selection: which runs, which split, which bundles. Every page starts here.

API (stable; pages 1-7 use only this)::

    from app.context import current, Selection

    sel = current()            # st.info + st.stop() when nothing usable is selected
    sel.base                   # analysis.bundle.Bundle of the base run (always there)
    sel.drgi                   # Bundle of the second ("DRGI") run, or None when not picked /
                               # not exported; it may be a run WITHOUT DRGI (check has_drgi)
    sel.base_run, sel.drgi_run # run folders (Path; drgi_run None when not picked)
    sel.dataset, sel.split     # e.g. "synthvtt", "test"
    sel.roots                  # app.state.AppRoots: roots.check(path) before opening a file
    sel.data_root              # dataset root inside the roots (None when not found)
    sel.paired                 # both bundles exist and describe the same captions and videos
    sel.bundles()              # [("base", base), ("DRGI", drgi)] for the runs that are there
    sel.label(bundle)          # "base: demo-base" / "DRGI: demo-drgi"
    sel.require_pair("the rank comparison")   # -> (base, drgi); st.info + stop otherwise
    sel.require_drgi("the attention graphs")  # -> the bundle with DRGI arrays; info + stop
    sel.drgi_bundles()         # the selected bundles that have DRGI arrays

    current(require_pair=True, what="…")    # the Selection, after sel.require_pair(what)

    # other building blocks for pages
    from app import resources       # cached loaders: load_bundle, live_search, point_placer,
                                    # model_card, paired_stats, comparison, failure_table
    from app.components.thumbs import frame_strip, frame_images, ranked_list, video_file
    from app.components.query import query_picker, take_selection, selected_points, selected_rows
    from app.components.query import set_query, shared_query   # the query shared by the pages
    from app.components.drill import drill_buttons, step_buttons  # open on other pages; J / K
    from app.components.text import escape_md   # captions are data: escape before st.markdown

``app/main.py`` draws the sidebar (:mod:`app.components.sidebar`) before running the page and
stores the result with :func:`set_current`; :func:`current` reads it back. A page run on its
own (outside ``main.py``) draws the sidebar itself.

Widgets that say "where am I" are bound to the URL (``bind="query-params"``): the runs
(``?base=…&drgi=…``), the split (``?split=synthvtt-test``) and the query (``?q=12``), with
the keys in :mod:`app.state`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from analysis.bundle import Bundle
from app.state import AppRoots

logger = logging.getLogger(__name__)

_STATE_KEY = "_drgi_lab_selection"  # session_state: Selection | str (why there is none)
BASE_LABEL = "base"
DRGI_LABEL = "DRGI"


@dataclass(frozen=True)
class Selection:
    """What the sidebar picked (see the module docstring for the API).

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
            "sidebar (config `drgi.enable=true`)."
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


def set_current(selection: Selection | str) -> None:
    """Store the sidebar's result (a :class:`Selection`, or why there is none)."""
    st.session_state[_STATE_KEY] = selection


def current(*, require_pair: bool = False, what: str = "this page") -> Selection:
    """The current :class:`Selection`.

    Shows an ``st.info`` with what to do and stops the page when no usable base bundle is
    selected (no runs, nothing exported yet, outside the roots...). With ``require_pair`` it
    also stops unless both runs' bundles are there and comparable.
    """
    value = st.session_state.get(_STATE_KEY)
    if value is None:
        from app.components.sidebar import render_sidebar

        value = render_sidebar(AppRoots.from_env())
        set_current(value)
    if not isinstance(value, Selection):
        st.info(str(value))
        st.stop()
    if require_pair:
        value.require_pair(what)
    return value
