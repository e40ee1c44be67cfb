"""app/components/point_map.py, the Python side: what the browser gets (the figure with
base64 arrays, no template, the selectable trace checked), the selection events it sends back
(checked, each taken once) and where plotly.js is served from. The browser side is tested in
tests/e2e/test_browser.py."""

from __future__ import annotations

import re

import numpy as np
import plotly
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from app.components.point_map import (
    PLOTLY_JS,
    PLOTLY_JS_DIR,
    figure_payload,
    selection_ids,
)
from tests.helpers_app import plotly_array, point_map_data


def _figure() -> go.Figure:
    fig = go.Figure(go.Scattergl(x=np.array([0.0, 1.0, 2.0], dtype=np.float32),
                                 y=np.array([2.0, 1.0, 0.0], dtype=np.float32),
                                 customdata=np.array([7, 8, 9], dtype=np.int32),
                                 marker=dict(color=np.array([0, 1, 0], dtype=np.uint8)),
                                 hovertext=["a", "b", "c"]))
    fig.add_trace(go.Scatter(x=[None], y=[None], name="legend only"))
    return fig


def test_figure_payload_sends_typed_arrays_and_no_template():
    payload = figure_payload(_figure())
    trace = payload["data"][0]
    for key, dtype in (("x", "f4"), ("y", "f4"), ("customdata", "i4")):
        assert set(trace[key]) >= {"dtype", "bdata"} and trace[key]["dtype"] == dtype
    assert trace["marker"]["color"]["dtype"] == "u1"  # colour codes, not a string per point
    assert plotly_array(trace["customdata"]).tolist() == [7, 8, 9]
    np.testing.assert_array_equal(plotly_array(trace["x"]), [0.0, 1.0, 2.0])
    assert trace["hovertext"] == ["a", "b", "c"]
    assert "template" not in payload["layout"]
    assert len(payload["data"]) == 2


def test_a_chart_without_selection_needs_no_ids():
    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4]))
    payload = figure_payload(fig, ids_trace=None)
    assert payload["data"][0]["type"] == "bar" and "template" not in payload["layout"]


def test_figure_payload_names_a_missing_id_trace():
    with pytest.raises(ValueError, match="ids_trace=2: the figure has 2 trace"):
        figure_payload(_figure(), ids_trace=2)
    with pytest.raises(ValueError, match="trace 1 \\('legend only'\\) has no customdata"):
        figure_payload(_figure(), ids_trace=1)


def test_selection_events_are_checked():
    assert selection_ids(None, "m") is None
    assert selection_ids({"ids": [3, 0], "mode": "lasso", "seq": "a"}, "m") == ("a", [3, 0])
    assert selection_ids({"ids": [], "mode": "box", "seq": "b"}, "m") == ("b", [])
    for bad in ({"ids": [1]}, {"ids": "1,2", "seq": "a"}, [1, 2], "x"):
        with pytest.raises(ValueError, match="selection of map 'm': expected"):
            selection_ids(bad, "m")
    for bad_id in (-1, 1.5, "2", True):
        with pytest.raises(ValueError, match=f"point id {re.escape(repr(bad_id))} is not"):
            selection_ids({"ids": [0, bad_id], "seq": "a"}, "m")


def test_plotly_js_is_the_installed_packages_own():
    path = PLOTLY_JS_DIR / PLOTLY_JS
    assert path.is_file()
    head = path.read_text(encoding="utf-8", errors="replace")[:400]
    from plotly.offline import get_plotlyjs_version

    assert f"plotly.js v{get_plotlyjs_version()}" in head
    assert PLOTLY_JS_DIR.parent == __import__("pathlib").Path(plotly.__file__).resolve().parent


def _script() -> None:
    import numpy as np
    import plotly.graph_objects as go
    import streamlit as st

    from app.components.point_map import point_map, take_selection

    got = take_selection("m")
    st.session_state["taken"] = [*st.session_state.get("taken", []), got]
    fig = go.Figure(go.Scattergl(x=np.arange(3.0), y=np.arange(3.0),
                                 customdata=np.arange(3, dtype=np.int32)))
    point_map(fig, key="m", view="v1")


def test_each_selection_is_taken_once_and_the_chart_gets_its_data():
    at = AppTest.from_function(_script).run()
    assert not at.exception
    data = point_map_data(at, "m")
    assert data["ids_trace"] == 0 and data["mode"] == "lasso" and data["view"] == "m|v1"
    assert data["plotly_url"] == f"/component/app.components.point_map.plotly_js/{PLOTLY_JS}"
    assert plotly_array(data["figure"]["data"][0]["customdata"]).tolist() == [0, 1, 2]
    at.session_state["m"] = {"selection": {"ids": [2, 0], "mode": "lasso", "seq": "s1"}}
    at.run()
    at.run()  # the same event again: not a new selection
    at.session_state["m"] = {"selection": {"ids": [], "mode": "box", "seq": "s2"}}
    at.run()
    assert not at.exception
    assert at.session_state["taken"] == [None, [2, 0], None, []]


def _bad_script() -> None:
    from app.components.point_map import take_selection

    take_selection("m")


def test_a_malformed_event_is_an_error_naming_the_map():
    at = AppTest.from_function(_bad_script)
    at.session_state["m"] = {"selection": {"ids": ["x"], "seq": "s"}}
    at.run()
    assert at.exception and "selection of map 'm'" in at.exception[0].value
