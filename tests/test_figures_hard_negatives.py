"""Tests for app.components.figures.hard_negatives: per-query bars and training curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.components.figures.hard_negatives import (
    BEATS_GT,
    BELOW_GT,
    GT_COLOUR,
    query_bars,
    training_curves_figure,
)


def test_query_bars_rise_from_below_the_lowest_score_and_flag_negatives():
    fig = query_bars(["GT v1", "#1 v7", "#2 v3"], [0.2, 0.3, -0.1], [True, False],
                     same_family=[False, True], ids=[1, 7, 3])
    bar = fig.data[0]
    assert list(bar.x) == ["GT v1", "#1 v7", "#2 v3"]
    assert list(bar.marker.color) == [GT_COLOUR, BEATS_GT, BELOW_GT]
    assert list(bar.marker.pattern.shape) == ["", "", "/"]
    floor = bar.base
    assert floor < -0.1
    np.testing.assert_allclose(np.asarray(bar.y) + floor, [0.2, 0.3, -0.1])
    assert [c[0] for c in bar.customdata] == [1, 7, 3]
    assert fig.layout.shapes[0].y0 == 0.2  # the GT score line
    lo, hi = fig.layout.yaxis.range
    assert lo == floor and hi > 0.3
    with pytest.raises(ValueError, match="3 names"):
        query_bars(["GT", "a", "b"], [0.1, 0.2], [True, True])


def test_training_curves_one_line_per_quantity_and_a_chance_line():
    curves = pd.DataFrame({"step": [0, 10, 0, 10], "quantity": ["acc", "acc", "loss", "loss"],
                           "value": [0.5, 0.6, 1.0, 0.8]})
    fig = training_curves_figure(curves, "DRGI during training — DRGI")
    assert [t.name for t in fig.data] == ["acc", "loss"]
    assert list(fig.data[0].y) == [0.5, 0.6]
    assert fig.layout.shapes[0].y0 == 0.5
    assert fig.layout.xaxis.title.text == "training step"
    with pytest.raises(ValueError, match="value"):
        training_curves_figure(curves.drop(columns="value"), "t")
