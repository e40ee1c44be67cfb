"""One page of a long id-keyed table at a time, the page bound to the URL and following the
selected query.

A dataframe of 59,800 rows costs seconds per rerun (Arrow serialisation on the server, layout
in the browser), so a page draws ``rows`` of them (:data:`PAGE_ROWS`) with a page number input
bound to the URL (``?<key>=3``, 1-based). Everything else on the page (counts, group-bys,
histograms, export, J / K stepping) keeps using the whole list.

The page follows the selected query: :func:`table_page` moves it to the page that holds the
query whenever the query or the list changed since the last run (J / K, a typed index, a
drill-down link, new filters or sort), and to page 1 when new filters drop the query. A page
picked by hand stays while neither changes; the first draw in a session takes the link's page
(``?<key>=``; a value out of range is warned about and clamped), else the query's when one
was picked (a link's ``?q=``, another page), else page 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from app.urlstate import check_index, remember

PAGE_ROWS = 500  # rows of a table page
_MEMO = "_page_memo_"  # session_state + key: (query, ids) of the last run


def page_count(n_rows: int, rows: int) -> int:
    """Pages of ``rows`` rows that hold ``n_rows`` rows (at least 1, for an empty table)."""
    if rows < 1:
        raise ValueError(f"rows per page must be >= 1, got {rows}")
    return max(1, -(-int(n_rows) // int(rows)))


def page_span(page: int, n_rows: int, rows: int) -> tuple[int, int]:
    """The row positions ``[start, stop)`` of page ``page`` (1-based, clamped to the pages)."""
    page = min(max(int(page), 1), page_count(n_rows, rows))
    start = (page - 1) * int(rows)
    return start, min(start + int(rows), int(n_rows))


def page_of(ids: Sequence[int], query: int | None, rows: int) -> int | None:
    """The page (1-based) whose rows hold ``query`` among ``ids``, or None when it is not
    there."""
    if query is None:
        return None
    try:
        return list(ids).index(int(query)) // int(rows) + 1
    except ValueError:
        return None


def _url_page(key: str) -> int | None:
    try:
        raw = [str(v) for v in st.query_params.get_all(key)]
    except Exception:  # noqa: BLE001 - a proxy without the key reads as empty
        return None
    try:
        return int(raw[-1]) if raw else None
    except ValueError:
        return None


def table_page(key: str, ids: Sequence[int], query: int | None, *, rows: int | None = None,
               picked: bool = True, container: Any = None,
               what: str = "rows") -> tuple[int, int]:
    """Draw the page control of a table showing ``ids`` (in display order) and return the row
    positions ``[start, stop)`` of the page to show.

    Args:
        key: the number input's key and URL parameter.
        ids: every row's query id, in display order (the whole filtered, sorted list).
        query: the selected query (its page is shown when it changed, see the module).
        picked: whether ``query`` was picked (a link's ``?q=``, another page, a click); a
            first draw in the session opens on page 1 when it is only the picker's default.
        rows: rows per page (default :data:`PAGE_ROWS`).
        container: where to draw the control (default: the page).
        what: what a row is, for the caption ("rows 501–1,000 of 59,800").

    With a single page nothing is drawn (a bad ``?<key>=`` is still warned about).
    """
    where = container if container is not None else st
    rows = PAGE_ROWS if rows is None else int(rows)
    ids = [int(i) for i in ids]
    n = page_count(len(ids), rows)
    target = page_of(ids, query, rows)
    memo = st.session_state.get(_MEMO + key)
    if memo is None:  # first draw in this session: the link's page, else the query's
        url = _url_page(key)
        page = url if url is not None else ((target if picked else None) or 1)
    elif memo[0] != query or memo[1] != ids:  # moved, or new filters / sort
        kept = st.session_state.get(key) if memo[1] == ids else None
        page = target if target is not None else (kept or 1)
    else:  # a page picked by hand (none after a visit to another page: the query's)
        page = st.session_state.get(key) or target or 1
    page = min(max(int(page), 1), n)
    check_index(key, n + 1, page, lo=1, what="page of this table",
                span=f"the table has pages 1–{n}", container=where)
    st.session_state[_MEMO + key] = (query, ids)
    if n == 1:
        return page_span(1, len(ids), rows)
    if st.session_state.get(key) != page:
        st.session_state[key] = page
    c_page, c_note = where.columns([1, 4], vertical_alignment="bottom")
    page = remember(key, int(c_page.number_input(
        f"page (of {n:,})", min_value=1, max_value=n, step=1, key=key, bind="query-params",
        help="The table shows one page of the list; the page follows the selected query.")))
    start, stop = page_span(page, len(ids), rows)
    c_note.caption(f"{what} {start + 1:,}–{stop:,} of {len(ids):,} shown (counts, histograms, "
                   "export and J / K use all of them)")
    return start, stop
