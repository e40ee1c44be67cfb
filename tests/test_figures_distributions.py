"""Tests for app.components.figures.distributions: overlaid histograms."""

from __future__ import annotations

import numpy as np

from app.components.figures.distributions import count_histogram, overlay_histogram


def test_overlay_histogram_one_percent_trace_per_series_and_a_zero_line():
    a, b = np.array([-0.1, 0.2, 0.3]), np.array([0.5, 0.6])
    fig = overlay_histogram([("base", a, "#1f77b4"), ("DRGI", b, "#ff7f0e")], "margin",
                            vline=0.0)
    assert [t.name for t in fig.data] == ["base", "DRGI"]
    assert all(t.type == "histogram" and t.histnorm == "percent" for t in fig.data)
    np.testing.assert_array_equal(fig.data[1].x, b)
    assert fig.data[1].marker.color == "#ff7f0e" and fig.data[0].opacity == 0.55
    assert fig.layout.barmode == "overlay"
    assert fig.layout.xaxis.title.text == "margin"
    assert fig.layout.yaxis.title.text == "% of queries"
    assert [(s.x0, s.x1) for s in fig.layout.shapes] == [(0.0, 0.0)]
    gap = overlay_histogram([("matched pairs", a, "#2ca02c")], "cosine", y_title="% of pairs",
                            opacity=0.6, height=300)
    assert gap.layout.yaxis.title.text == "% of pairs" and gap.data[0].opacity == 0.6
    assert not gap.layout.shapes and gap.layout.height == 300


def test_count_histogram_has_one_bin_per_integer_in_raw_counts():
    fig = count_histogram([("base", np.array([0, 1, 1, 5]), "#1f77b4")], "N_10", "videos")
    t = fig.data[0]
    assert t.xbins.size == 1 and not t.histnorm
    assert fig.layout.yaxis.title.text == "videos" and fig.layout.xaxis.title.text == "N_10"
