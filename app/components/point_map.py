"""A plotly chart that stays mounted across reruns, with its own lasso and box selection.

``st.plotly_chart`` keys its browser element on a hash of the figure, so any change of a map
(the greyed unselected points, a colour mode) mounts a new chart: ``Plotly.newPlot``, a new
WebGL context and its shaders on every rerun. And with ``on_select`` plotly tests every drawn
point against the growing lasso on each mouse move and builds per-point event data.

This component (Streamlit components v2, drawn in the app's page, no iframe) keeps ONE chart
per key: a rerun with a changed figure updates it in place (``Plotly.react`` on the same div),
an unchanged one does nothing. The lasso and box are drawn on an overlay by our own script
(``point_map.js``); on mouse-up it tests the points of one trace (their ids in
``customdata``) against the shape in pixel space through the plot's axes and returns their
ids. plotly.js is the installed plotly package's own ``plotly.min.js``, served by the app's
server (never a CDN).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import plotly
import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st

JS = (Path(__file__).with_name("point_map.js")).read_text(encoding="utf-8")
CSS = """
.point-map { position: relative; }
.point-map-overlay { position: absolute; left: 0; top: 0; display: none; pointer-events: none;
  overflow: visible; z-index: 10; }
.point-map-overlay path { fill: rgba(99, 110, 250, 0.08); stroke: #636efa; stroke-width: 1.5;
  stroke-dasharray: 4 3; }
.point-map[data-mode=lasso] .nsewdrag, .point-map[data-mode=box] .nsewdrag { cursor: crosshair; }
.point-map-error { color: #d62728; padding: 0.5rem 0; }
"""
PLOTLY_JS_DIR = Path(plotly.__file__).resolve().parent / "package_data"
PLOTLY_JS = "plotly.min.js"
SEEN_PREFIX = "_point_map_seen_"  # + key: the last selection event taken from that map
Mode = Literal["lasso", "box"]

HTML = '<div class="point-map"></div>'  # the map's root, in the page as soon as it mounts
_component = st.components.v2.component("point_map", html=HTML, js=JS, css=CSS,
                                        isolate_styles=False)


def plotly_js_url() -> str:
    """The URL path of the installed plotly package's ``plotly.min.js`` on the app's own
    server (registered as a static component folder; call inside a script run)."""
    from streamlit.components.v1 import declare_component

    if not (PLOTLY_JS_DIR / PLOTLY_JS).is_file():
        raise FileNotFoundError(f"{PLOTLY_JS_DIR / PLOTLY_JS} is missing: the plotly package "
                                "ships plotly.js there (reinstall plotly)")
    served = declare_component("plotly_js", path=PLOTLY_JS_DIR)
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return "/" + "/".join(p for p in (base, "component", served.name, PLOTLY_JS) if p)


def figure_payload(fig: go.Figure, *, ids_trace: int | None = 0) -> dict[str, Any]:
    """The figure as the browser gets it: ``{"data": [...], "layout": {...}}`` with numeric
    arrays in plotly's base64 form (``{"dtype", "bdata"}``) and no template (the browser
    styles it from the app's theme).

    Raises:
        ValueError: ``ids_trace`` (None: nothing to select) is not a trace of ``fig``, or that
            trace has no ``customdata`` (the point ids a selection returns).
    """
    spec = json.loads(pio.to_json(fig, validate=False))
    traces = spec.get("data", [])
    if ids_trace is not None:
        if not 0 <= ids_trace < len(traces):
            raise ValueError(f"ids_trace={ids_trace}: the figure has {len(traces)} trace(s)")
        if traces[ids_trace].get("customdata") is None:
            raise ValueError(f"trace {ids_trace} ({traces[ids_trace].get('name')!r}) has no "
                             "customdata: expected the point ids a selection returns")
    layout = spec.get("layout", {})
    layout.pop("template", None)
    return {"data": traces, "layout": layout}


def selection_ids(event: Any, key: str) -> tuple[str, list[int]] | None:
    """``(seq, ids)`` of a selection event sent by map ``key`` (``{"ids": [int, ...],
    "mode": "lasso" | "box", "seq": str}``), or None when there is none.

    Raises:
        ValueError: a malformed event, naming the map and what was expected.
    """
    if event is None:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("ids"), list) \
            or not isinstance(event.get("seq"), str):
        raise ValueError(f"selection of map {key!r}: expected {{'ids': [int, ...], 'seq': str}}, "
                         f"got {str(event)[:200]}")
    ids = event["ids"]
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
        bad = next(i for i in ids if not (isinstance(i, int) and not isinstance(i, bool)
                                          and i >= 0))
        raise ValueError(f"selection of map {key!r}: point id {bad!r} is not a non-negative "
                         "integer")
    return event["seq"], ids


def take_selection(key: str) -> list[int] | None:
    """The ids of the points inside a lasso or box the user drew on map ``key`` since this
    was last asked (each drawing once; an empty list when it enclosed none), or None. Call
    before the map is drawn in the run (it reads the state the browser sent with the rerun).

    Raises:
        ValueError: a malformed selection event (see :func:`selection_ids`).
    """
    state = st.session_state.get(key)
    event = state.get("selection") if isinstance(state, dict) else None
    got = selection_ids(event, key)
    if got is None or st.session_state.get(SEEN_PREFIX + key) == got[0]:
        return None
    st.session_state[SEEN_PREFIX + key] = got[0]
    return got[1]


def point_map(fig: go.Figure, *, key: str, view: str = "", ids_trace: int | None = 0,
              mode: Mode | None = "lasso") -> None:
    """Draw ``fig`` as a chart kept across reruns (read its selections with
    :func:`take_selection`).

    Args:
        fig: the figure; trace ``ids_trace`` holds the selectable points, their ids in
            ``customdata`` (``[S]`` ints).
        key: the element's key (one chart per key, kept while the key is on the page).
        view: the zoom / pan revision: the user's zoom and pan are kept while it stays the
            same (a new ``view`` shows the figure's own ranges).
        ids_trace: the trace whose points a lasso or box selects; None: a chart without
            selection (no lasso or box), kept across reruns all the same.
        mode: the drag mode the chart opens with (``None``: plotly's zoom).
    """
    if mode not in ("lasso", "box", None):
        raise ValueError(f"mode={mode!r}: expected 'lasso', 'box' or None")
    data = {"figure": figure_payload(fig, ids_trace=ids_trace), "ids_trace": ids_trace,
            "view": f"{key}|{view}", "mode": mode if ids_trace is not None else None,
            "plotly_url": plotly_js_url()}
    _component(key=key, data=data, on_selection_change=lambda: None)
