"""Tests for app.components.figures.overview: the ground-truth rank histograms."""

from __future__ import annotations

import numpy as np

from analysis.rankings import rank_histogram
from app.components.figures.overview import rank_histogram_figure


def test_rank_histograms_are_grouped_bars_on_a_categorical_bin_axis():
    a = rank_histogram(np.array([1, 1, 2, 7, 40]), max_rank=50)
    b = rank_histogram(np.array([1, 3, 3, 3, 9]), max_rank=50)
    fig = rank_histogram_figure([("base: r1", a, "#1f77b4"), ("DRGI: r2", b, "#ff7f0e")], "t2v")
    assert [t.name for t in fig.data] == ["base: r1", "DRGI: r2"]
    assert fig.data[1].marker.color == "#ff7f0e"
    assert list(fig.data[0].x) == a["bin"].tolist()
    np.testing.assert_allclose(fig.data[0].y, a["share"])
    assert list(fig.data[0].customdata) == a["count"].tolist()
    assert fig.layout.xaxis.type == "category" and fig.layout.barmode == "group"
    assert fig.layout.title.text == "t2v: ground-truth rank"
    assert fig.layout.yaxis.title.text == "% of queries"
