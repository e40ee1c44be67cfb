"""Tests for app.components.figures.queries: a column histogram of the query table."""

from __future__ import annotations

import pandas as pd
import pytest

from app.components.figures.queries import column_histogram


def test_column_histogram_bins_the_column_and_names_it():
    table = pd.DataFrame({"delta_log2": [-1.0, 0.0, 0.0, 2.0], "rank_a": [1, 2, 3, 4]})
    fig = column_histogram(table, "delta_log2", "Δ log2 rank")
    assert fig.data[0].type == "histogram"
    assert list(fig.data[0].x) == [-1.0, 0.0, 0.0, 2.0]
    assert fig.layout.xaxis.title.text == "Δ log2 rank"
    assert fig.layout.yaxis.title.text == "queries"
    with pytest.raises(ValueError, match="'nope'"):
        column_histogram(table, "nope", "x")
