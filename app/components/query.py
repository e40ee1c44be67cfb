"""The "which query" picker bound to the URL (``?q=12``), fed by chart and table selections.

Charts and tables report selections as plain dicts in ``st.session_state`` (their keys). A
page draws them first, passes the picked ids to :func:`take_selection`, and then draws
:func:`query_picker`: a *new* selection moves the bound query, an unchanged one leaves a query
typed by hand alone.

The query is shared by every page: the picker of each page is its own widget (Streamlit keys
widgets per page), so the last query picked anywhere is kept in ``st.session_state`` under
:data:`SHARED_QUERY` and seeds the picker of the next page opened (:func:`set_query` moves it;
:func:`shared_query` reads it). A page opened from a fresh link reads ``?q=`` from the URL.

A table whose rows are re-sorted or filtered between runs is keyed on ids instead
(:func:`take_row_click` before :func:`query_picker`, :func:`select_query_row` when drawing
the table): a dataframe reports selected row *positions*, which name another query once the
order changes, so a click is read against the ids the table showed when it was clicked, and
the highlighted row is moved to the bound query's row (or cleared when it is not shown).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import streamlit as st

from app.state import KEY_QUERY
from app.urlstate import check_index, remember

_SEEN = "_seen_selection_"
SHARED_QUERY = "_drgi_lab_query"  # the query picked last, on any page (an int)


def shared_query() -> int | None:
    """The query picked last on any page, or None before any was."""
    value = st.session_state.get(SHARED_QUERY)
    return None if value is None else int(value)


def set_query(query: int, *, widget: bool = True) -> None:
    """Make ``query`` the current query of every page.

    With ``widget`` (the default) the picker's own key is set too, which Streamlit allows
    only before the picker is drawn in this run (or in a callback); after it, pass
    ``widget=False``: the next page run picks the query up from the shared value.
    """
    st.session_state[SHARED_QUERY] = int(query)
    if widget:
        st.session_state[KEY_QUERY] = int(query)


def _picker_changed() -> None:
    if st.session_state.get(KEY_QUERY) is not None:
        st.session_state[SHARED_QUERY] = int(st.session_state[KEY_QUERY])


def selected_points(event: Any) -> list[Any]:
    """The ``customdata`` ids of the points of a plotly selection event (a plain dict or a
    ``PlotlyState``); list-valued customdata gives its first element."""
    selection = _get(event, "selection")
    points = _get(selection, "points") or []
    out = []
    for p in points:
        cd = _get(p, "customdata")
        if isinstance(cd, list | tuple):
            cd = cd[0] if cd else None
        if cd is not None:
            out.append(cd)
    return out


def selected_rows(event: Any) -> list[int]:
    """The selected row positions of a dataframe selection event."""
    selection = _get(event, "selection")
    return [int(r) for r in (_get(selection, "rows") or [])]


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def take_selection(source: str, ids: Iterable[Any]) -> int | None:
    """Move the bound query to the first of ``ids`` when this source's selection changed.

    Call before :func:`query_picker` in the same run. Returns the id taken, or None.
    """
    ids = [int(i) for i in ids]
    seen_key = _SEEN + source
    if st.session_state.get(seen_key) == ids:
        return None
    st.session_state[seen_key] = ids
    if not ids:
        return None
    set_query(ids[0])
    return ids[0]


def query_picker(n: int, *, label: str = "Query", help: str | None = None,
                 container: Any = None) -> int:
    """A number input for the query index ``0..n-1``, bound to the URL as ``q``, seeded
    with the query picked last on any page (:func:`shared_query`)."""
    where = container if container is not None else st
    check_index(KEY_QUERY, n, 0, what=f"{label} of this split", container=where)
    shared = shared_query()
    if shared is not None:
        st.session_state[KEY_QUERY] = shared
    value = st.session_state.get(KEY_QUERY)
    if value is not None and not 0 <= int(value) < n:
        st.session_state[KEY_QUERY] = min(max(int(value), 0), n - 1)
    q = int(where.number_input(
        label, min_value=0, max_value=max(n - 1, 0), step=1, key=KEY_QUERY,
        bind="query-params", help=help, on_change=_picker_changed,
    ))
    st.session_state[SHARED_QUERY] = q
    return remember(KEY_QUERY, q)


_SHOWN_IDS = "_shown_ids_"
_SHOWN_ROWS = "_shown_rows_"


def take_row_click(table_key: str) -> int | None:
    """Move the bound query to the row the user just clicked in the id-keyed table
    ``table_key``, if any. Call before :func:`query_picker`.

    A click is a selection that differs from the one the table was last drawn with; its row
    position is read against the ids that table showed (the user clicked that table, not the
    one this run is about to draw). Clearing the selection keeps the query. Returns the id
    taken, or None.
    """
    rows = selected_rows(st.session_state.get(table_key))
    shown = st.session_state.get(_SHOWN_IDS + table_key)
    if shown is None or rows == st.session_state.get(_SHOWN_ROWS + table_key) or not rows:
        return None
    if not 0 <= rows[0] < len(shown):
        return None
    set_query(int(shown[rows[0]]))
    return int(shown[rows[0]])


def select_query_row(table_key: str, ids: Sequence[int], query: int) -> int | None:
    """Set the selection of the id-keyed table ``table_key`` to the row of ``query`` among
    ``ids`` (the table's ``query`` column, in display order), or to none when it is not
    shown; call just before drawing the dataframe with ``key=table_key``. Returns the row.
    """
    ids = [int(i) for i in ids]
    row = ids.index(int(query)) if int(query) in ids else None
    rows = [] if row is None else [row]
    if selected_rows(st.session_state.get(table_key)) != rows:
        st.session_state[table_key] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    st.session_state[_SHOWN_IDS + table_key] = ids
    st.session_state[_SHOWN_ROWS + table_key] = rows
    return row
