"""Drill-down between pages, and j/k stepping through a filtered list of queries.

:func:`drill_buttons` draws one button per page that shows a caption query (Compare,
Failures, Attention, Hard negatives, Embeddings); a click makes the query the current one of
every page (:func:`app.components.query.set_query`), leaves page settings for the target page
that make it show that query (e.g. the Failures run in which the query fails, with its filters
cleared) and switches to it. ``app/main.py`` applies those settings before the page runs
(:func:`apply_pending`).

:func:`step_buttons` draws "previous" / "next" buttons with the keyboard shortcuts ``K`` and
``J`` (Streamlit's own button shortcuts: no script of ours runs in the browser), which move the
current query through the list the page shows, in its order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from app.components.query import set_query, shared_query
from app.state import REPO

PENDING = "_drgi_lab_pending"  # {widget key: value} for the next page run
APP_PAGES = REPO / "app" / "app_pages"

# (page file, button label, icon)
DRILL_PAGES: tuple[tuple[str, str, str], ...] = (
    ("compare.py", "Compare", ":material/compare_arrows:"),
    ("failures.py", "Failures", ":material/error:"),
    ("attention.py", "Attention", ":material/hub:"),
    ("hard_negatives.py", "Hard negatives", ":material/balance:"),
    ("embeddings.py", "Embeddings", ":material/scatter_plot:"),
)


def page_state(page: str, *, failing_run: str | None = None, k: int = 1) -> dict[str, Any]:
    """The widget values that make ``page`` (a file of :data:`DRILL_PAGES`) show a caption
    query: Compare on text → video, Attention on a caption's graph, Failures on the run in
    which the query fails (``failing_run``: ``"base"`` or ``"DRGI"``) at threshold ``k`` with
    no filter hiding it."""
    if page == "compare.py":
        return {"dir": "t2v"}
    if page == "attention.py":
        return {"attn_kind": "caption"}
    if page == "failures.py":
        state: dict[str, Any] = {"failures_k": int(k), "failures_types": [],
                                 "failures_search": ""}
        if failing_run is not None:
            state["failures_run"] = failing_run
        return state
    return {}


def failing_run(ranks: Mapping[str, int], k: int = 1) -> str | None:
    """The run whose failure the Failures page should open on: ``"DRGI"`` when its rank is
    above ``k``, else ``"base"`` when the base's is, else None (``ranks``: label -> rank)."""
    for label in ("DRGI", "base"):
        if label in ranks and int(ranks[label]) > int(k):
            return label
    return None


def open_query(page: str, query: int, state: Mapping[str, Any] | None = None) -> None:
    """Make ``query`` current, leave ``state`` for the target page and switch to ``page``
    (a file name under ``app/app_pages``). Call from the page body, not from a callback."""
    set_query(query, widget=False)
    st.session_state[PENDING] = dict(state or {})
    # An empty mapping, not None: None clears the URL through a call that refuses parameters
    # bound to widgets (?q=, ?base=, ...); the target page's widgets write theirs back.
    st.switch_page(Path(APP_PAGES / page), query_params={})


def apply_pending() -> None:
    """Set the widget values left by :func:`open_query` (call before the page runs)."""
    pending = st.session_state.pop(PENDING, None)
    if isinstance(pending, dict):
        for key, value in pending.items():
            st.session_state[key] = value


def drill_buttons(query: int, *, key: str, failing_run: str | None = None, k: int = 1,
                  exclude: str | None = None, container: Any = None) -> None:
    """One button per page showing caption ``query`` (see :data:`DRILL_PAGES`), but the page
    file ``exclude`` (the page drawing them)."""
    where = container if container is not None else st
    pages = [p for p in DRILL_PAGES if p[0] != exclude]
    cols = where.columns(len(pages))
    for col, (page, label, icon) in zip(cols, pages, strict=True):
        if col.button(label, key=f"{key}_{page.removesuffix('.py')}", icon=icon,
                      width="stretch",
                      help=f"Open caption {query} on the {label} page"):
            open_query(page, query, page_state(page, failing_run=failing_run, k=k))


def step(ids: Sequence[int], current: int | None, offset: int) -> int | None:
    """The query ``offset`` places from ``current`` in ``ids`` (clamped to the ends); from a
    query not in ``ids``, "next" goes to the first and "previous" to the last. None when
    ``ids`` is empty."""
    ids = [int(i) for i in ids]
    if not ids:
        return None
    if current is None or int(current) not in ids:
        return ids[0] if offset > 0 else ids[-1]
    pos = ids.index(int(current)) + int(offset)
    return ids[min(max(pos, 0), len(ids) - 1)]


def _step_to(ids: list[int], offset: int) -> None:
    target = step(ids, shared_query(), offset)
    if target is not None:
        set_query(target)


def step_buttons(ids: Sequence[int], current: int | None, *, key: str,
                 what: str = "query", container: Any = None) -> None:
    """"Previous (K)" and "next (J)" buttons moving the current query through ``ids`` (the
    list the page shows, in its order). The move happens in the buttons' callback, before
    the next run draws the query picker."""
    where = container if container is not None else st
    ids = [int(i) for i in ids]
    pos = ids.index(int(current)) + 1 if current is not None and int(current) in ids else None
    c1, c2, c3 = where.columns([1, 1, 3], vertical_alignment="center")
    c1.button("previous", key=f"{key}_prev", icon=":material/arrow_upward:", shortcut="K",
              on_click=_step_to, args=(ids, -1), disabled=not ids, width="stretch",
              help=f"The previous {what} of the list (key K)")
    c2.button("next", key=f"{key}_next", icon=":material/arrow_downward:", shortcut="J",
              on_click=_step_to, args=(ids, 1), disabled=not ids, width="stretch",
              help=f"The next {what} of the list (key J)")
    c3.caption(f"{what} {pos} of {len(ids)} in the list (J / K step)" if pos is not None
               else f"the current {what} is not in the list of {len(ids)}; J / K step into it")
