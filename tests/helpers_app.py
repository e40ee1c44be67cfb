"""Driving the Streamlit app with AppTest: shared by the tests/test_app*.py files.

The ``app_env`` fixture (tests/conftest.py) points the app at the tiny run pair; these
helpers start the app, open a page and read what it drew.
"""

from __future__ import annotations

import base64
import json

import numpy as np
from streamlit.testing.v1 import AppTest

from analysis.bundle import Bundle
from app.main import APP_DIR
from tvr.data.synthvtt import SplitMeta

MAIN = str(APP_DIR / "main.py")
TIMEOUT = 120


def app_test(**query_params: str) -> AppTest:
    """An AppTest of ``app/main.py`` (not run yet) with ``query_params`` in its URL."""
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    for key, value in query_params.items():
        at.query_params[key] = value
    return at


def assert_no_errors(at: AppTest) -> None:
    """Fail listing the exceptions and ``st.error`` messages the last run showed."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def open_page(page: str, **query_params: str) -> AppTest:
    """Run the app with ``query_params``, switch to ``page`` (e.g. ``app_pages/compare.py``),
    run it and check it showed no error."""
    at = app_test(**query_params).run()
    at.switch_page(page).run()
    assert_no_errors(at)
    return at


def tables_with(at: AppTest, *columns: str) -> list:
    """The dataframes that have all of ``columns``, as pandas frames."""
    return [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]


def table_with(at: AppTest, *columns: str):
    """The first dataframe that has all of ``columns``; fails when there is none."""
    found = tables_with(at, *columns)
    assert found, f"no table with columns {columns}"
    return found[0]


def page_bundle(env, run) -> Bundle:
    """The synthvtt-test bundle of ``run`` in the ``app_env`` fixture ``env`` (not
    freshness-checked), with its dataset root."""
    return Bundle.load(run / "analysis" / "synthvtt-test", check=False,
                       data_root=env.data / "synthvtt")


def split_meta(bundle: Bundle) -> SplitMeta:
    """The SynthVTT ground truth aligned with a bundle, read as the app reads it."""
    assert bundle.data_root is not None, f"{bundle.path}: SynthVTT root not found"
    return bundle.synthvtt_meta()


def chart(at: AppTest, key: str) -> dict:
    """The figure dict of the plotly chart or point map (app.components.point_map) with widget
    key ``key``."""
    for el in at.get("plotly_chart"):
        if str(el.proto.id).endswith(f"-{key}"):
            return json.loads(el.proto.spec)
    payload = point_map_data(at, key, missing_ok=True)
    if payload is not None:
        return payload["figure"]
    raise AssertionError(f"no plotly chart or point map with key {key!r}")


def point_map_data(at: AppTest, key: str, *, missing_ok: bool = False) -> dict | None:
    """The data the point map with widget key ``key`` sends to the browser."""
    for el in at.get("bidi_component"):
        if el.proto.component_name == "point_map" and str(el.proto.id).endswith(f"-{key}"):
            return json.loads(el.proto.json)
    if missing_ok:
        return None
    raise AssertionError(f"no point map with key {key!r}")


def plotly_array(value) -> np.ndarray:
    """A plotly data array: a list, or numpy's base64 form ``{dtype, bdata, shape}``."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        if "shape" in value:
            arr = arr.reshape([int(s) for s in str(value["shape"]).split(",")])
        return arr
    return np.asarray(value)


def assert_histogram_of(trace: dict, values, *, percent: bool = True) -> None:
    """``trace`` (a pre-binned bar histogram, app.components.figures.distributions) holds the
    histogram of ``values``' finite entries over its own bins (percent of them, or counts)."""
    x, width = plotly_array(trace["x"]).astype(float), plotly_array(trace["width"]).astype(float)
    edges = np.concatenate([x - width / 2, [x[-1] + width[-1] / 2]])
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    assert edges[0] <= v.min() and v.max() <= edges[-1], "values outside the histogram's bins"
    counts = np.histogram(v, bins=edges)[0]
    want = 100.0 * counts / v.size if percent else counts
    np.testing.assert_allclose(plotly_array(trace["y"]).astype(float), want, rtol=1e-9,
                               atol=1e-9)


def marker_colours(trace: dict) -> list[str]:
    """The per-point colours of a trace whose ``marker.color`` holds category codes on a
    stepped colour scale (app.components.figures.map_colours), or plain colour strings."""
    marker = trace["marker"]
    if isinstance(marker["color"], list) and marker["color"] and isinstance(
            marker["color"][0], str):
        return list(marker["color"])
    codes = plotly_array(marker["color"]).astype(int)
    scale = marker["colorscale"]
    palette = [scale[2 * i][1] for i in range(len(scale) // 2)]
    assert marker["cmin"] == -0.5 and marker["cmax"] == len(palette) - 0.5
    return [palette[c] for c in codes.tolist()]
