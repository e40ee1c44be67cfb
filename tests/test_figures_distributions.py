"""Tests for app.components.figures.distributions: overlaid histograms."""

from __future__ import annotations

import numpy as np
import pytest

from app.components.figures.distributions import (
    count_histogram,
    histogram_edges,
    overlay_histogram,
)


def test_overlay_histogram_one_percent_trace_per_series_and_a_zero_line():
    a, b = np.array([-0.1, 0.2, 0.3]), np.array([0.5, 0.6])
    fig = overlay_histogram([("base", a, "#1f77b4"), ("DRGI", b, "#ff7f0e")], "margin",
                            vline=0.0)
    assert [t.name for t in fig.data] == ["base", "DRGI"]
    assert all(t.type == "bar" for t in fig.data)
    # shared bins, each series in percent of its own values
    np.testing.assert_array_equal(fig.data[0].x, fig.data[1].x)
    assert sum(fig.data[0].y) == pytest.approx(100) and sum(fig.data[1].y) == pytest.approx(100)
    edges = np.concatenate([np.asarray(fig.data[1].x) - np.asarray(fig.data[1].width) / 2,
                            [fig.data[1].x[-1] + fig.data[1].width[-1] / 2]])
    np.testing.assert_allclose(fig.data[1].y, 100 * np.histogram(b, edges)[0] / 2)
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


def test_histogram_edges_integer_bins_auto_bins_and_degenerate_input():
    np.testing.assert_array_equal(histogram_edges([np.array([1, 3]), np.array([2.0])]),
                                  [0.5, 1.5, 2.5, 3.5])
    wide = histogram_edges([np.arange(1000)])  # integers over too wide a range: capped bins
    assert len(wide) - 1 <= 60 and wide[0] == 0 and wide[-1] == 999
    np.testing.assert_array_equal(histogram_edges([np.array([0.25, 0.25])]), [-0.25, 0.75])
    np.testing.assert_array_equal(histogram_edges([np.array([np.nan])]), [0.0, 1.0])
