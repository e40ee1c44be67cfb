"""Tests for app.components.figures.failures: failure-type bars, word-by-frame heatmap."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.components.figures.failures import (
    MARK_COLOUR,
    MAX_ANNOTATED_CELLS,
    failure_type_bars,
    word_frame_heatmap,
)


def test_failure_type_bars_count_queries_per_type():
    fig = failure_type_bars(pd.Series({"object": 3, "action": 0, "order": 2}))
    assert list(fig.data[0].x) == ["object", "action", "order"]
    assert list(fig.data[0].y) == [3, 0, 2]
    assert fig.layout.xaxis.title.text == "failure type"
    assert fig.layout.yaxis.title.text == "queries"


def test_word_frame_heatmap_uses_the_shared_scale_and_labels():
    m = np.array([[0.1, 0.4], [0.3, 0.2], [0.0, 0.5]])
    fig = word_frame_heatmap(m, ["f0 @ 0.10s", "f1 @ 0.50s"], ["0:a", "1:red", "2:circle"],
                             "ground truth: v1", zmin=-0.2, zmax=0.9)
    assert list(fig.data[0].x) == ["f0 @ 0.10s", "f1 @ 0.50s"]
    assert list(fig.data[0].y) == ["0:a", "1:red", "2:circle"]
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (-0.2, 0.9)
    assert fig.layout.coloraxis.colorbar.title.text == "cosine"
    assert fig.data[0].texttemplate == "%{z:.2f}"
    assert fig.layout.height == 120 + 24 * 3
    big = word_frame_heatmap(np.zeros((31, 30)), [str(i) for i in range(30)], None, "t",
                             zmin=0, zmax=1)
    assert MAX_ANNOTATED_CELLS < 31 * 30 and not big.data[0].texttemplate


def test_word_frame_heatmap_outlines_the_played_frame_column_only():
    m = np.zeros((2, 4))
    assert not word_frame_heatmap(m, list("abcd"), None, "t", zmin=0, zmax=1).layout.shapes
    fig = word_frame_heatmap(m, list("abcd"), None, "t", zmin=0, zmax=1, marked_frame=2)
    (rect,) = fig.layout.shapes
    assert (rect.type, rect.x0, rect.x1, rect.yref, rect.y0, rect.y1) == (
        "rect", 1.5, 2.5, "paper", 0, 1)
    assert rect.line.color == MARK_COLOUR
    # a stale pick beyond this video's frames outlines nothing
    assert not word_frame_heatmap(m, list("abcd"), None, "t", zmin=0, zmax=1,
                                  marked_frame=4).layout.shapes
