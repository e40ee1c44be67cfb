"""Tests for app.components.figures.queries: a column histogram of the query table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.components.figures.queries import column_histogram


def test_column_histogram_bins_the_column_and_names_it():
    table = pd.DataFrame({"delta_log2": [-1.0, 0.0, 0.0, 2.0], "rank_a": [1, 2, 3, 4],
                          "status": ["fixed", "both fail", "fixed", "both fine"],
                          "sibling": [True, False, True, True]})
    fig = column_histogram(table, "delta_log2", "Δ log2 rank")
    bar = fig.data[0]
    assert bar.type == "bar"
    # integer values: one bin per integer from -1 to 2, counted here (not every value sent)
    assert list(bar.x) == [-1.0, 0.0, 1.0, 2.0] and list(bar.y) == [1, 2, 0, 1]
    assert fig.layout.xaxis.title.text == "Δ log2 rank"
    assert fig.layout.yaxis.title.text == "queries"
    status = column_histogram(table, "status", "status").data[0]
    assert list(status.x) == ["fixed", "both fail", "both fine"] and list(status.y) == [2, 1, 1]
    assert dict(zip(column_histogram(table, "sibling", "s").data[0].x,
                    column_histogram(table, "sibling", "s").data[0].y)) == {"True": 3, "False": 1}
    with pytest.raises(ValueError, match="'nope'"):
        column_histogram(table, "nope", "x")


def test_a_large_column_is_sent_as_a_few_bins():
    values = np.random.default_rng(0).normal(size=59_800)
    values[:5] = np.nan  # missing values (e.g. discriminator scores of a run without DRGI)
    fig = column_histogram(pd.DataFrame({"margin": values}), "margin", "margin")
    bar = fig.data[0]
    assert len(bar.x) <= 60 and int(np.sum(bar.y)) == 59_795
