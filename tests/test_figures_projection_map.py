"""Tests for app.components.figures.projection_map: the Embeddings map figure."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.embedding_map import MapPoints
from app.components.figures.map_colours import KIND_COLOURS, kind_colours
from app.components.figures.projection_map import (
    KIND_SIZES,
    UNSELECTED,
    map_figure,
    mark_query,
)


def _points() -> MapPoints:
    kind = np.array([0, 0, 1, 2, 2, 3, 3])
    item = np.array([0, 1, 0, 0, 1, 0, 1])
    position = np.array([0, 0, 0, -1, -1, -1, -1])
    caption = np.array([0, 1, -1, 0, 1, -1, -1])
    video = np.array([0, 1, 0, 0, 1, 0, 1])
    coords = np.arange(14, dtype=np.float32).reshape(7, 2)
    return MapPoints(coords, kind, item, position, caption, video)


def _decode(trace) -> list[str]:
    scale = trace.marker.colorscale
    palette = [scale[2 * i][1] for i in range(len(scale) // 2)]
    assert trace.marker.cmin == -0.5 and trace.marker.cmax == len(palette) - 0.5
    return [palette[int(c)] for c in np.asarray(trace.marker.color)]


def test_map_is_one_webgl_trace_of_the_shown_points_with_numeric_colours():
    p = _points()
    shown = np.array([0, 2, 3, 5])
    hover = np.array(["w0", "f0", "c0", "v0"])
    fig = map_figure(p, p.coords, shown, kind_colours(p), None, hover, "base · PCA")
    trace = fig.data[0]
    assert trace.type == "scattergl" and len(fig.data) == 1 + 4  # + one legend entry per kind
    np.testing.assert_array_equal(trace.customdata, shown)
    np.testing.assert_array_equal(trace.x, p.coords[shown, 0])
    assert np.asarray(trace.marker.color).dtype.kind == "u"  # codes, not colour strings
    assert _decode(trace) == [KIND_COLOURS[k] for k in p.kind[shown]]
    assert np.asarray(trace.marker.size).tolist() == [KIND_SIZES[k] for k in p.kind[shown]]
    assert list(trace.hovertext) == hover.tolist()
    assert [t.name for t in fig.data[1:]] == ["word tokens", "frame tokens", "captions (pooled)",
                                              "videos (pooled)"]
    assert all(t.x == (None,) for t in fig.data[1:])
    assert fig.layout.title.text == "base · PCA" and fig.layout.dragmode == "lasso"


def test_unselected_points_are_greyed_and_drawn_first_with_their_hover():
    p = _points()
    shown = np.arange(7)
    lit = np.array([False, True, False, False, True, False, True])
    hover = np.array([f"h{i}" for i in range(7)])
    trace = map_figure(p, p.coords, shown, kind_colours(p), lit, hover, "t").data[0]
    ids = np.asarray(trace.customdata)
    assert ids[-3:].tolist() == [1, 4, 6]  # the lit points last, on top
    colours = _decode(trace)
    assert [c == UNSELECTED for c in colours] == [not lit[i] for i in ids]
    assert list(trace.hovertext) == [f"h{i}" for i in ids]  # hover follows its point
    assert trace.hovertemplate == "%{hovertext}<extra></extra>"
    no_hover = map_figure(p, p.coords, shown, kind_colours(p), None, None, "t").data[0]
    assert no_hover.hovertemplate == "point %{customdata}<extra></extra>"
    with pytest.raises(ValueError, match="hover"):
        map_figure(p, p.coords, shown, kind_colours(p), None, hover[:3], "t")


def test_query_marks_sit_on_the_caption_its_ground_truth_and_negatives():
    p = _points()
    fig = map_figure(p, p.coords, np.arange(7), kind_colours(p), None, None, "t")
    mark_query(fig, p, p.coords, q=1, gt=1, negatives=[0])
    marks = {t.name: t for t in fig.data[-3:]}
    assert list(marks) == ["caption 1", "its ground truth", "top negatives"]
    assert marks["caption 1"].x == (p.coords[4, 0],)  # caption 1's pooled point
    assert marks["its ground truth"].x == (p.coords[6, 0],)
    assert marks["top negatives"].x == (p.coords[5, 0],)
