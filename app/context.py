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
own (outside ``main.py``) draws the sidebar itself. :class:`Selection` is defined in
:mod:`app.selection` (the sidebar builds it without importing this module) and re-exported
here.

Widgets that say "where am I" are bound to the URL (``bind="query-params"``): the runs
(``?base=…&drgi=…``), the split (``?split=synthvtt-test``) and the query (``?q=12``), with
the keys in :mod:`app.state`.
"""

from __future__ import annotations

import logging

import streamlit as st

from app.components.sidebar import render_sidebar
from app.selection import BASE_LABEL, DRGI_LABEL, Selection, same_queries
from app.state import AppRoots

__all__ = ["BASE_LABEL", "DRGI_LABEL", "Selection", "current", "same_queries", "set_current"]

logger = logging.getLogger(__name__)

_STATE_KEY = "_drgi_lab_selection"  # session_state: Selection | str (why there is none)


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
        value = render_sidebar(AppRoots.from_env())
        set_current(value)
    if not isinstance(value, Selection):
        st.info(str(value))
        st.stop()
    if require_pair:
        value.require_pair(what)
    return value
